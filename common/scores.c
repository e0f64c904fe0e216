/* scores.c - softmax and top-k (see scores.h). */
#include "scores.h"

#include <math.h>

void scores_softmax(const float *logits, int n, float *probs)
{
    float max = logits[0];
    for (int i = 1; i < n; i++)
        if (logits[i] > max)
            max = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] - max);
    for (int i = 0; i < n; i++)
        probs[i] = (float)(exp((double)logits[i] - max) / sum);
}

void scores_topk(const float *probs, int n, int k, int *idx)
{
    /* k is small (<= n_classes, usually 5): insertion into a sorted prefix */
    int have = 0;
    for (int i = 0; i < n; i++) {
        if (have == k && !(probs[i] > probs[idx[k - 1]]))
            continue;
        int j = have < k ? have++ : k - 1;
        while (j > 0 && probs[i] > probs[idx[j - 1]]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
}
