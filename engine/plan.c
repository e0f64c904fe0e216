/* plan.c - placeholder until written. */
typedef int placeholder_plan_t;
