/* net.c - freeing a net_t (see net.h); building one is the loader's job. */
#include "net.h"

#include <stdlib.h>

static void conv_clear(net_conv_t *c)
{
    free(c->weight);
    free(c->bias);
    free(c->qweight);
    free(c->qbias);
    free(c->oscale);
    c->weight = NULL;
    c->bias = NULL;
    c->qweight = NULL;
    c->qbias = NULL;
    c->oscale = NULL;
}

void net_free(net_t *net)
{
    if (!net)
        return;
    conv_clear(&net->stem);
    for (int i = 0; i < net->n_blocks; i++) {
        net_block_t *b = &net->blocks[i];
        for (int j = 0; j < b->n_convs; j++)
            conv_clear(&b->conv[j]);
        if (b->has_downsample)
            conv_clear(&b->downsample);
    }
    free(net->blocks);
    free(net->fc_weight);
    free(net->fc_bias);
    free(net->points);
    free(net);
}
