/* fault_dnnl.c - an LD_PRELOAD shim for tests that need oneDNN to fail or to
 * be slow inside a real server, where nothing a request carries can make it
 * so: the 500 path and the drain that times out (test_faults_http.py).
 * While the file $RESNETD_FAULT_DIR/fail exists, dnnl_primitive_execute
 * returns dnnl_runtime_error; while $RESNETD_FAULT_DIR/slow exists, each call
 * first sleeps 20 ms. Otherwise it is oneDNN's own. Test code only. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <dnnl.h>

typedef dnnl_status_t (*execute_fn)(const_dnnl_primitive_t, dnnl_stream_t, int,
                                    const dnnl_exec_arg_t *);

static int fault_on(const char *name)
{
    const char *dir = getenv("RESNETD_FAULT_DIR");
    char path[PATH_MAX];
    if (!dir || snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return 0;
    return access(path, F_OK) == 0;
}

dnnl_status_t dnnl_primitive_execute(const_dnnl_primitive_t primitive, dnnl_stream_t stream,
                                     int nargs, const dnnl_exec_arg_t *args)
{
    execute_fn real = (execute_fn)(void (*)(void))dlsym(RTLD_NEXT, "dnnl_primitive_execute");
    if (!real || fault_on("fail"))
        return dnnl_runtime_error;
    if (fault_on("slow"))
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    return real(primitive, stream, nargs, args);
}
