/* scores.h - logits to probabilities and the k best classes: the one softmax
 * and top-k that POST /classify, KServe infer and `resnetd classify` share.
 * Pure functions; thread-safe. */
#ifndef RESNETD_SCORES_H
#define RESNETD_SCORES_H

/* probs[i] = exp(logits[i] - max) / sum, accumulated in double. n >= 1.
 * probs may not alias logits. */
void scores_softmax(const float *logits, int n, float *probs);

/* Writes the indices of the k largest probs into idx[0..k), largest first;
 * equal values keep the lower index first. 1 <= k <= n. */
void scores_topk(const float *probs, int n, int k, int *idx);

#endif
