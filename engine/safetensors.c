/* safetensors.c - placeholder until written. */
typedef int placeholder_t;
