/* convert_tfjs.c - placeholder until written. */
typedef int placeholder_convert_tfjs_t;
