/*
 * Native kernels of trigml-cpu, compiled on first use and called through ctypes.
 *
 * trigml_trees_predict: branch-free evaluation of a boosted tree ensemble stored as
 * perfect binary trees.
 *
 * Every tree is padded to depth `depth`: node k has children 2k+1 (left, taken when
 * x[feature] < threshold, as xgboost decides) and 2k+2 (right); a leaf reached early
 * is repeated below a node whose threshold is +inf, so every event takes exactly
 * `depth` steps per tree and the walk needs no branches. Events are processed in
 * blocks of BLOCK so that one tree's nodes stay in the L1 cache while the block walks
 * it; the block's features are copied feature-major and its eight walks are kept
 * in registers, so that they overlap in the CPU. Leaf values are summed per output
 * group (class) on top of the base margin, then the link function is applied.
 *
 * trigml_lut_predict: bonsai lookup tables. The bin of a value is the number of the
 * feature's interior bin edges at or below it (equal to searchsorted(edges, x,
 * "right") - 1 clipped to the axis), found by a branch-free binary search over the
 * interior edges padded with +inf to a power of two; the cell's values are copied out.
 *
 * Both functions return the number of NaN inputs seen; the caller refuses the batch
 * when it is not zero.
 */
#include <math.h>
#include <stdint.h>

#define BLOCK 8
#define MAX_GROUPS 64
/* Widest feature row the block walk copies onto the stack; wider rows are walked
   one event at a time. */
#define MAX_BLOCK_FEATURES 512

typedef struct {
  float threshold;
  int32_t feature;
} node_t;

typedef struct {
  const node_t *nodes;  /* n_trees * (2^depth - 1) */
  const float *leaves;  /* n_trees * 2^depth */
  const int32_t *group; /* n_trees: output group (class) of each tree */
  const float *base;    /* n_groups base margins */
  int64_t n_trees;
  int32_t depth;
  int32_t n_groups;
  int32_t link; /* 0 identity, 1 logistic, 2 softmax */
  int32_t n_features;
} ensemble_t;

static void finish(const float *margin, int32_t n_groups, int32_t link, float *out) {
  if (link == 1) {
    out[0] = 1.0f / (1.0f + expf(-margin[0]));
  } else if (link == 2) {
    float top = margin[0], sum = 0.0f;
    for (int32_t g = 1; g < n_groups; ++g)
      if (margin[g] > top) top = margin[g];
    for (int32_t g = 0; g < n_groups; ++g) {
      out[g] = expf(margin[g] - top);
      sum += out[g];
    }
    for (int32_t g = 0; g < n_groups; ++g) out[g] /= sum;
  } else {
    for (int32_t g = 0; g < n_groups; ++g) out[g] = margin[g];
  }
}

/* One step down a tree for walk J of the block: read the node, compare, descend. */
#define STEP(I, J)                                                         \
  do {                                                                     \
    const node_t q = nodes[I];                                             \
    const float v = xt[(intptr_t)q.feature * BLOCK + (J)];                 \
    I = 2 * I + 1 + (v >= q.threshold);                                    \
  } while (0)

static void walk_block(const ensemble_t *m, const float *x, float *acc) {
  const int32_t nf = m->n_features, ng = m->n_groups;
  const intptr_t inner = ((intptr_t)1 << m->depth) - 1;
  /* The block's features, feature-major: event j's feature f is xt[f * BLOCK + j]. */
  float xt[BLOCK * MAX_BLOCK_FEATURES];
  for (int32_t f = 0; f < nf; ++f)
    for (int32_t j = 0; j < BLOCK; ++j) xt[f * BLOCK + j] = x[j * nf + f];

  const node_t *nodes = m->nodes;
  const float *leaves = m->leaves - inner;
  for (int64_t t = 0; t < m->n_trees; ++t, nodes += inner, leaves += inner + 1) {
    intptr_t i0 = 0, i1 = 0, i2 = 0, i3 = 0, i4 = 0, i5 = 0, i6 = 0, i7 = 0;
    for (int32_t d = 0; d < m->depth; ++d) {
      STEP(i0, 0);
      STEP(i1, 1);
      STEP(i2, 2);
      STEP(i3, 3);
      STEP(i4, 4);
      STEP(i5, 5);
      STEP(i6, 6);
      STEP(i7, 7);
    }
    const int32_t g = m->group[t];
    acc[0 * ng + g] += leaves[i0];
    acc[1 * ng + g] += leaves[i1];
    acc[2 * ng + g] += leaves[i2];
    acc[3 * ng + g] += leaves[i3];
    acc[4 * ng + g] += leaves[i4];
    acc[5 * ng + g] += leaves[i5];
    acc[6 * ng + g] += leaves[i6];
    acc[7 * ng + g] += leaves[i7];
  }
}
#undef STEP

static void walk_one(const ensemble_t *m, const float *x, float *acc) {
  const int32_t inner = (1 << m->depth) - 1;
  int64_t t = 0;
  for (; t + 4 <= m->n_trees; t += 4) {
    const node_t *n0 = m->nodes + t * inner, *n1 = n0 + inner, *n2 = n1 + inner,
                 *n3 = n2 + inner;
    int32_t k0 = 0, k1 = 0, k2 = 0, k3 = 0;
    for (int32_t d = 0; d < m->depth; ++d) {
      const node_t q0 = n0[k0], q1 = n1[k1], q2 = n2[k2], q3 = n3[k3];
      k0 = 2 * k0 + 1 + (x[q0.feature] >= q0.threshold);
      k1 = 2 * k1 + 1 + (x[q1.feature] >= q1.threshold);
      k2 = 2 * k2 + 1 + (x[q2.feature] >= q2.threshold);
      k3 = 2 * k3 + 1 + (x[q3.feature] >= q3.threshold);
    }
    const float *leaves = m->leaves + t * (inner + 1) - inner;
    acc[m->group[t]] += leaves[k0];
    acc[m->group[t + 1]] += leaves[(inner + 1) + k1];
    acc[m->group[t + 2]] += leaves[2 * (inner + 1) + k2];
    acc[m->group[t + 3]] += leaves[3 * (inner + 1) + k3];
  }
  for (; t < m->n_trees; ++t) {
    const node_t *nodes = m->nodes + t * inner;
    int32_t k = 0;
    for (int32_t d = 0; d < m->depth; ++d) {
      const node_t q = nodes[k];
      k = 2 * k + 1 + (x[q.feature] >= q.threshold);
    }
    acc[m->group[t]] += m->leaves[t * (inner + 1) + k - inner];
  }
}

static int64_t count_nan(const float *x, int64_t size) {
  int64_t nans = 0;
  for (int64_t i = 0; i < size; ++i) nans += isnan(x[i]) ? 1 : 0;
  return nans;
}

int64_t trigml_trees_predict(const ensemble_t *m, const float *x, int64_t n,
                             float *out) {
  const int32_t nf = m->n_features, ng = m->n_groups;
  const int64_t nans = count_nan(x, n * nf);
  if (nans) return nans;

  float acc[BLOCK * MAX_GROUPS];
  int64_t i = 0;
  for (; nf <= MAX_BLOCK_FEATURES && i + BLOCK <= n; i += BLOCK) {
    for (int32_t j = 0; j < BLOCK; ++j)
      for (int32_t g = 0; g < ng; ++g) acc[j * ng + g] = m->base[g];
    walk_block(m, x + i * nf, acc);
    for (int32_t j = 0; j < BLOCK; ++j)
      finish(acc + j * ng, ng, m->link, out + (i + j) * ng);
  }
  for (; i < n; ++i) {
    for (int32_t g = 0; g < ng; ++g) acc[g] = m->base[g];
    walk_one(m, x + i * nf, acc);
    finish(acc, ng, m->link, out + i * ng);
  }
  return 0;
}

typedef struct {
  const float *edges;    /* per feature: interior edges, +inf padded to `width` */
  const int64_t *offset; /* start of each feature's edges */
  const int32_t *width;  /* padded number of edges, a power of two */
  const int64_t *stride; /* cells per bin step of each feature */
  const float *table;    /* cells * n_values */
  int32_t n_features;
  int32_t n_values;
} lut_t;

int64_t trigml_lut_predict(const lut_t *m, const float *x, int64_t n, float *out) {
  const int32_t nf = m->n_features, nv = m->n_values;
  const int64_t nans = count_nan(x, n * nf);
  if (nans) return nans;

  for (int64_t i = 0; i < n; ++i) {
    int64_t cell = 0;
    for (int32_t f = 0; f < nf; ++f) {
      const float v = x[i * nf + f];
      const float *edges = m->edges + m->offset[f], *base = edges;
      int32_t len = m->width[f];
      while (len > 1) {
        const int32_t half = len >> 1;
        /* An arithmetic mask, not a conditional: a branch here mispredicts half
           the time on real data. */
        base += half & -(int32_t)(base[half - 1] <= v);
        len -= half;
      }
      cell += ((base - edges) + (base[0] <= v)) * m->stride[f];
    }
    const float *values = m->table + cell * nv;
    for (int32_t k = 0; k < nv; ++k) out[i * nv + k] = values[k];
  }
  return 0;
}
