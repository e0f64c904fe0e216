/* safetensors_write.c - placeholder until written. */
typedef int placeholder_safetensors_write_t;
