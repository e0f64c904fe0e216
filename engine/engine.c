/* engine.c - placeholder until written. */
typedef int placeholder_engine_t;
