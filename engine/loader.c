/* loader.c - placeholder until written. */
typedef int placeholder_loader_t;
