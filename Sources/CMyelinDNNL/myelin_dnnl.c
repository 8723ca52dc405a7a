// oneDNN's convolution primitives for the CPU device (include/myelin_dnnl.h), through its C API loaded with dlopen.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <oneapi/dnnl/dnnl.h>
#include "myelin_dnnl.h"

// The oneDNN functions used, looked up in libdnnl at load time: p_NAME has the type of NAME.
#define DNNL_FUNCTIONS(X) X(dnnl_engine_create) X(dnnl_stream_create) X(dnnl_stream_wait) \
    X(dnnl_memory_desc_init_by_tag) X(dnnl_memory_desc_equal) X(dnnl_memory_desc_get_size) X(dnnl_memory_create) \
    X(dnnl_memory_set_data_handle) X(dnnl_convolution_forward_desc_init) \
    X(dnnl_convolution_backward_data_desc_init) X(dnnl_convolution_backward_weights_desc_init) \
    X(dnnl_primitive_desc_create) X(dnnl_primitive_desc_query_md) X(dnnl_primitive_desc_query) \
    X(dnnl_primitive_create) X(dnnl_primitive_execute) X(dnnl_reorder_primitive_desc_create) \
    X(dnnl_primitive_attr_create) X(dnnl_primitive_attr_set_scratchpad_mode)
#define DECLARE(f) static __typeof__(f) *p_##f;
DNNL_FUNCTIONS(DECLARE)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int loaded = -1;   // -1 not tried, 0 failed, 1 usable
static char load_error[256] = "";
static dnnl_engine_t engine;
static dnnl_stream_t stream;
/// Every primitive gets its scratchpad from us (`scratch` slot 4, see `run`), not from oneDNN's per-thread global
/// one: with that one, primitives made on one thread and run on others corrupted the heap (tests running in
/// parallel, each on its own thread, with the calls serialized by `lock`).
static dnnl_primitive_attr_t attributes;

/// Sets an environment variable for the OpenMP runtime that libdnnl loads, unless the user set it; returns
/// whether it was set (then it is removed again once the runtime has read it).
static int set_default(const char *name, const char *value) {
    if (getenv(name) != NULL) return 0;
    return setenv(name, value, 1) == 0;
}

int myelin_dnnl_load(int threads) {
    pthread_mutex_lock(&lock);
    if (loaded >= 0) { pthread_mutex_unlock(&lock); return loaded; }
    loaded = 0;
    char count[16];
    snprintf(count, sizeof count, "%d", threads > 0 ? threads : 1);
    int setThreads = set_default("OMP_NUM_THREADS", count), setPolicy = set_default("OMP_WAIT_POLICY", "passive");
    void *lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (setThreads) unsetenv("OMP_NUM_THREADS");   // libgomp read them when it loaded
    if (setPolicy) unsetenv("OMP_WAIT_POLICY");
    if (lib == NULL) {
        snprintf(load_error, sizeof load_error, "cannot load libdnnl.so.2 (apt-get install libdnnl-dev): %s", dlerror());
        pthread_mutex_unlock(&lock);
        return 0;
    }
#define LOOKUP(f) p_##f = (__typeof__(f) *)dlsym(lib, #f); \
    if (p_##f == NULL) { snprintf(load_error, sizeof load_error, "libdnnl.so.2 has no %s", #f); pthread_mutex_unlock(&lock); return 0; }
    DNNL_FUNCTIONS(LOOKUP)
    if (p_dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success
        || p_dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success
        || p_dnnl_primitive_attr_create(&attributes) != dnnl_success
        || p_dnnl_primitive_attr_set_scratchpad_mode(attributes, dnnl_scratchpad_mode_user) != dnnl_success) {
        snprintf(load_error, sizeof load_error, "oneDNN could not make a CPU engine and stream");
        pthread_mutex_unlock(&lock);
        return 0;
    }
    loaded = 1;
    pthread_mutex_unlock(&lock);
    return 1;
}

const char *myelin_dnnl_error(void) { return load_error; }

// MARK: primitives with their reorders

/// One argument of a primitive: the caller's plain buffer (`user`), and, when the primitive wants another
/// layout, a scratch buffer in that layout (`inner`) reached by a reorder before (input) or after (output) it.
/// A primitive with the memory of its scratchpad (NULL when it needs none).
typedef struct {
    dnnl_primitive_t primitive;
    dnnl_memory_t pad;
    size_t pad_bytes;
} runnable;

typedef struct {
    int arg, output;
    dnnl_memory_desc_t inner_md;
    dnnl_memory_t user, inner;
    runnable reorder;   // primitive NULL: the primitive reads or writes the caller's buffer directly
} argument;

/// A primitive and its arguments (at most 4), in the order the caller passes their pointers.
typedef struct {
    dnnl_primitive_desc_t pd;
    runnable main;
    int count;
    argument args[4];
} prepared;

/// Scratch buffers for the blocked layouts, one per argument position (0-3), and the scratchpads (4), grown as
/// needed and shared by every primitive (calls run one at a time under `lock`).
static void *scratch[5];
static size_t scratch_size[5];

static void *scratch_for(int slot, size_t bytes) {
    if (bytes > scratch_size[slot]) {
        free(scratch[slot]);
        scratch[slot] = NULL;
        scratch_size[slot] = 0;
        if (posix_memalign(&scratch[slot], 64, bytes) != 0) return NULL;
        scratch_size[slot] = bytes;
    }
    return scratch[slot];
}

/// Makes the primitive of `pd` and the memory object for its scratchpad.
static int make_runnable(runnable *r, dnnl_primitive_desc_t pd) {
    memset(r, 0, sizeof *r);
    if (p_dnnl_primitive_create(&r->primitive, pd) != dnnl_success) return 1;
    const dnnl_memory_desc_t *pad = p_dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    r->pad_bytes = pad == NULL ? 0 : p_dnnl_memory_desc_get_size(pad);
    return r->pad_bytes > 0 && p_dnnl_memory_create(&r->pad, pad, engine, DNNL_MEMORY_NONE) != dnnl_success;
}

/// Runs `r` with `count` arguments (room for one more: the scratchpad).
static int run(runnable *r, int count, dnnl_exec_arg_t *args) {
    if (r->pad_bytes > 0) {
        void *pad = scratch_for(4, r->pad_bytes);
        if (pad == NULL || p_dnnl_memory_set_data_handle(r->pad, pad) != dnnl_success) return 1;
        args[count++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, r->pad};
    }
    return p_dnnl_primitive_execute(r->primitive, stream, count, args) != dnnl_success;
}

/// Fills `p` from a primitive descriptor: for argument i (oneDNN kind `kinds[i]`), a reorder from/to the plain
/// layout `plain[i]` when the primitive chose another one.
static int prepare(prepared *p, dnnl_primitive_desc_t pd, int count, const int *kinds, const dnnl_memory_desc_t *plain,
                   const int *outputs) {
    memset(p, 0, sizeof *p);
    p->pd = pd;
    p->count = count;
    if (make_runnable(&p->main, pd)) return 1;
    for (int i = 0; i < count; i++) {
        argument *a = &p->args[i];
        a->arg = kinds[i];
        a->output = outputs[i];
        a->inner_md = *p_dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, kinds[i]);
        if (p_dnnl_memory_create(&a->inner, &a->inner_md, engine, DNNL_MEMORY_NONE) != dnnl_success) return 1;
        if (p_dnnl_memory_desc_equal(&a->inner_md, &plain[i])) continue;
        dnnl_primitive_desc_t rpd;
        const dnnl_memory_desc_t *from = a->output ? &a->inner_md : &plain[i], *to = a->output ? &plain[i] : &a->inner_md;
        if (p_dnnl_memory_create(&a->user, &plain[i], engine, DNNL_MEMORY_NONE) != dnnl_success
            || p_dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, attributes) != dnnl_success
            || make_runnable(&a->reorder, rpd)) return 1;
    }
    return 0;
}

static int reorder(argument *a) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, a->output ? a->inner : a->user}, {DNNL_ARG_TO, a->output ? a->user : a->inner}};
    return run(&a->reorder, 2, args);
}

/// Runs `p` on the caller's buffers `pointers` (in argument order), with the reorders around it. An input whose
/// bit is set in `ready` is already in its scratch buffer in the primitive's layout (put there by the call before,
/// under the same lock): its reorder is skipped.
static int execute(prepared *p, void *const *pointers, unsigned ready) {
    dnnl_exec_arg_t args[5];
    for (int i = 0; i < p->count; i++) {
        argument *a = &p->args[i];
        if (a->reorder.primitive == NULL) {
            if (p_dnnl_memory_set_data_handle(a->inner, pointers[i]) != dnnl_success) return 1;
        } else {
            void *buffer = scratch_for(i, p_dnnl_memory_desc_get_size(&a->inner_md));
            if (buffer == NULL
                || p_dnnl_memory_set_data_handle(a->inner, buffer) != dnnl_success
                || p_dnnl_memory_set_data_handle(a->user, pointers[i]) != dnnl_success) return 1;
            if (!a->output && !(ready & (1u << i)) && reorder(a)) return 1;
        }
        args[i] = (dnnl_exec_arg_t){a->arg, a->inner};
    }
    if (run(&p->main, p->count, args)) return 1;
    for (int i = 0; i < p->count; i++) {
        if (p->args[i].output && p->args[i].reorder.primitive != NULL && reorder(&p->args[i])) return 1;
    }
    return p_dnnl_stream_wait(stream) != dnnl_success;
}

// MARK: convolutions, cached by shape

/// The primitives of one shape (with or without a bias): made on first use; state 0 not tried, 1 made, -1 refused.
typedef struct entry {
    myelin_dnnl_conv shape;
    int bias;
    int forward_state, data_state, weights_state;
    prepared forward, data, weights;
    struct entry *next;
} entry;

static entry *entries;

/// The plain layouts and dims of a shape: x nchw, weight oihw, y nchw, bias x.
typedef struct { dnnl_memory_desc_t x, w, y, b, x_any, w_any, y_any; dnnl_dims_t stride, pad_l, pad_r; } descs;

static int make_descs(const myelin_dnnl_conv *s, descs *d) {
    int outH = (s->h + 2 * s->padH - s->kh) / s->strideH + 1, outW = (s->w + 2 * s->padW - s->kw) / s->strideW + 1;
    dnnl_dims_t x = {s->n, s->c, s->h, s->w}, w = {s->o, s->c, s->kh, s->kw}, y = {s->n, s->o, outH, outW}, b = {s->o};
    d->stride[0] = s->strideH; d->stride[1] = s->strideW;
    d->pad_l[0] = d->pad_r[0] = s->padH; d->pad_l[1] = d->pad_r[1] = s->padW;
    return p_dnnl_memory_desc_init_by_tag(&d->x, 4, x, dnnl_f32, dnnl_nchw) != dnnl_success
        || p_dnnl_memory_desc_init_by_tag(&d->w, 4, w, dnnl_f32, dnnl_oihw) != dnnl_success
        || p_dnnl_memory_desc_init_by_tag(&d->y, 4, y, dnnl_f32, dnnl_nchw) != dnnl_success
        || p_dnnl_memory_desc_init_by_tag(&d->b, 1, b, dnnl_f32, dnnl_x) != dnnl_success
        || p_dnnl_memory_desc_init_by_tag(&d->x_any, 4, x, dnnl_f32, dnnl_format_tag_any) != dnnl_success
        || p_dnnl_memory_desc_init_by_tag(&d->w_any, 4, w, dnnl_f32, dnnl_format_tag_any) != dnnl_success
        || p_dnnl_memory_desc_init_by_tag(&d->y_any, 4, y, dnnl_f32, dnnl_format_tag_any) != dnnl_success;
}

/// Whether every primitive keeps the plain layouts (MYELIN_DNNL_LAYOUT=plain, for measuring); by default each
/// chooses its own (blocked) layouts, but the backward-data of an input with fewer than 8 channels, whose
/// blocked kernel measured far slower than the plain one (a 1-channel image: 73 ms against 2 ms at batch 128).
static int plain_only(void) {
    const char *v = getenv("MYELIN_DNNL_LAYOUT");
    return v != NULL && strcmp(v, "plain") == 0;
}

static entry *find(const myelin_dnnl_conv *s, int bias) {
    for (entry *e = entries; e != NULL; e = e->next) {
        if (e->bias == bias && memcmp(&e->shape, s, sizeof *s) == 0) return e;
    }
    entry *e = calloc(1, sizeof *e);
    if (e == NULL) return NULL;
    e->shape = *s;
    e->bias = bias;
    e->next = entries;
    entries = e;
    return e;
}

static int make_forward(entry *e) {
    descs d;
    if (make_descs(&e->shape, &d)) return 1;
    int plain = plain_only();
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd;
    if (p_dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, plain ? &d.x : &d.x_any,
            plain ? &d.w : &d.w_any, e->bias ? &d.b : NULL, plain ? &d.y : &d.y_any, d.stride, d.pad_l, d.pad_r) != dnnl_success
        || p_dnnl_primitive_desc_create(&pd, &cd, attributes, engine, NULL) != dnnl_success) return 1;
    int kinds[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    dnnl_memory_desc_t plains[4] = {d.x, d.w, d.y, d.b};
    int outputs[4] = {0, 0, 1, 0};
    return prepare(&e->forward, pd, e->bias ? 4 : 3, kinds, plains, outputs);
}

static int make_backward(entry *e, int weights) {
    descs d;
    if (make_descs(&e->shape, &d)) return 1;
    int plain = plain_only() || (!weights && e->shape.c < 8);
    const dnnl_memory_desc_t *x = plain ? &d.x : &d.x_any, *w = plain ? &d.w : &d.w_any, *y = plain ? &d.y : &d.y_any;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd;
    dnnl_status_t status = weights
        ? p_dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, x, w, NULL, y, d.stride, d.pad_l, d.pad_r)
        : p_dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, x, w, y, d.stride, d.pad_l, d.pad_r);
    if (status != dnnl_success || p_dnnl_primitive_desc_create(&pd, &cd, attributes, engine, e->forward.pd) != dnnl_success) return 1;
    if (weights) {
        int kinds[3] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS};
        dnnl_memory_desc_t plains[3] = {d.x, d.y, d.w};
        int outputs[3] = {0, 0, 1};
        return prepare(&e->weights, pd, 3, kinds, plains, outputs);
    }
    int kinds[3] = {DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_SRC};
    dnnl_memory_desc_t plains[3] = {d.w, d.y, d.x};
    int outputs[3] = {0, 0, 1};
    return prepare(&e->data, pd, 3, kinds, plains, outputs);
}

/// The entry of a shape with its forward made (the backward primitives take it as their hint), or NULL. Under `lock`.
static entry *with_forward(const myelin_dnnl_conv *s, int bias) {
    if (loaded != 1) return NULL;
    entry *e = find(s, bias);
    if (e == NULL) return NULL;
    if (e->forward_state == 0) e->forward_state = make_forward(e) ? -1 : 1;
    return e->forward_state == 1 ? e : NULL;
}

int myelin_dnnl_conv_supported(const myelin_dnnl_conv *shape) {
    pthread_mutex_lock(&lock);
    int ok = with_forward(shape, 0) != NULL;
    pthread_mutex_unlock(&lock);
    return ok;
}

int myelin_dnnl_conv_forward(const myelin_dnnl_conv *shape, const float *x, const float *weight, const float *bias,
                             float *y) {
    pthread_mutex_lock(&lock);
    entry *e = with_forward(shape, bias != NULL);
    void *const pointers[4] = {(void *)x, (void *)weight, y, (void *)bias};
    int failed = e == NULL || execute(&e->forward, pointers, 0);
    pthread_mutex_unlock(&lock);
    return failed;
}

/// Whether the entry's backward-data (`weights` 0) or backward-weights (1) primitive is ready, made on the first ask
/// (a failure is remembered: the caller falls back for this shape from then on).
static int backward_ready(entry *e, int weights) {
    int *state = weights ? &e->weights_state : &e->data_state;
    if (*state == 0) *state = make_backward(e, weights) ? -1 : 1;
    return *state == 1;
}

int myelin_dnnl_conv_backward_data(const myelin_dnnl_conv *shape, const float *weight, const float *gy, float *gx) {
    pthread_mutex_lock(&lock);
    entry *e = with_forward(shape, 0);
    int failed = 1;
    if (e != NULL) {
        void *const pointers[3] = {(void *)weight, (void *)gy, gx};
        failed = !backward_ready(e, 0) || execute(&e->data, pointers, 0);
    }
    pthread_mutex_unlock(&lock);
    return failed;
}

int myelin_dnnl_conv_backward_weights(const myelin_dnnl_conv *shape, const float *x, const float *gy, float *gw) {
    pthread_mutex_lock(&lock);
    entry *e = with_forward(shape, 0);
    int failed = 1;
    if (e != NULL) {
        void *const pointers[3] = {(void *)x, (void *)gy, gw};
        failed = !backward_ready(e, 1) || execute(&e->weights, pointers, 0);
    }
    pthread_mutex_unlock(&lock);
    return failed;
}

int myelin_dnnl_conv_backward(const myelin_dnnl_conv *shape, const float *x, const float *weight, const float *gy,
                              float *gx, float *gw) {
    pthread_mutex_lock(&lock);
    entry *e = with_forward(shape, 0);
    int failed = 3;
    if (e != NULL) {
        int data_ready = backward_ready(e, 0), weights_ready = backward_ready(e, 1);
        void *const data[3] = {(void *)weight, (void *)gy, gx}, *const weights[3] = {(void *)x, (void *)gy, gw};
        int data_failed = !data_ready || execute(&e->data, data, 0);
        // gy is argument 1 of both: when the data primitive reordered it into scratch slot 1 in the layout the
        // weights primitive reads, that copy is used again (one reorder of gy instead of two).
        const argument *dg = &e->data.args[1], *wg = &e->weights.args[1];
        unsigned ready = !data_failed && weights_ready && dg->reorder.primitive != NULL
            && wg->reorder.primitive != NULL && p_dnnl_memory_desc_equal(&dg->inner_md, &wg->inner_md) ? 2u : 0u;
        int weights_failed = !weights_ready || execute(&e->weights, weights, ready);
        failed = data_failed | (weights_failed << 1);
    }
    pthread_mutex_unlock(&lock);
    return failed;
}

static const char *implementation(const prepared *p, int state) {
    const char *s = "-";
    if (state == 1) p_dnnl_primitive_desc_query(p->pd, dnnl_query_impl_info_str, 0, &s);
    return s;
}

void myelin_dnnl_conv_describe(const myelin_dnnl_conv *shape, char *out, int size) {
    if (size <= 0) return;
    out[0] = 0;
    pthread_mutex_lock(&lock);
    for (entry *e = loaded == 1 ? entries : NULL; e != NULL; e = e->next) {
        if (memcmp(&e->shape, shape, sizeof *shape) != 0) continue;
        snprintf(out, size, "%s / %s / %s", implementation(&e->forward, e->forward_state),
                 implementation(&e->data, e->data_state), implementation(&e->weights, e->weights_state));
        break;
    }
    pthread_mutex_unlock(&lock);
}
