// A complete libnn backend plugin in one file: plain row-major loops, float32 and
// float64, the four hidden activations, softmax cross-entropy and mean squared error.
// It implements include/nn/nn_backend.h and nothing more; docs/writing-a-backend.md
// walks through it. Built as libnn-backend-cpu.so into its own directory, it stands in
// for the OpenBLAS backend when NN_BACKEND_PATH points there.
//
// The per-element math (activations, SGD, NumPy's pairwise sum, the cross-entropy
// term) comes from src/common/nn_math.h, the header every backend compiles, so this
// plugin computes what the reference does, operation for operation.
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "common/nn_math.h"
#include "nn/nn_backend.h"

namespace {

namespace m = nn::math;

const nn_host_services *g_host = nullptr;  // set once by the entry function

void report(const char *message) {
    if (g_host && g_host->set_error) g_host->set_error(message);
}

// ---- kernels (row-major: x is (B, I), W is (I, O), out is (B, O)) ---------------------

// out = x·W + b, then the activation unless this is the output layer.
template <typename T>
void affine_forward(T *out, const T *x, const T *W, const T *b, size_t B, size_t I, size_t O, bool hidden,
                    uint32_t act) {
    for (size_t r = 0; r < B; ++r)
        for (size_t j = 0; j < O; ++j) {
            T acc = T(0);
            for (size_t k = 0; k < I; ++k) acc += x[r * I + k] * W[k * O + j];
            out[r * O + j] = hidden ? m::activate(act, acc + b[j]) : acc + b[j];
        }
}

// dW = xᵀ·d, db = Σ_rows d, and (when dx) dx = d·Wᵀ taken back through the activation
// of the layer below, whose forward output is x.
template <typename T>
void affine_backward(T *dx, T *dW, T *db, const T *d, const T *x, const T *W, size_t B, size_t I, size_t O,
                     uint32_t act) {
    for (size_t k = 0; k < I; ++k)
        for (size_t j = 0; j < O; ++j) {
            T acc = T(0);
            for (size_t r = 0; r < B; ++r) acc += x[r * I + k] * d[r * O + j];
            dW[k * O + j] = acc;
        }
    for (size_t j = 0; j < O; ++j) {
        T acc = d[j];  // np.sum(axis=0) starts from the first row
        for (size_t r = 1; r < B; ++r) acc += d[r * O + j];
        db[j] = acc;
    }
    if (!dx) return;
    for (size_t r = 0; r < B; ++r)
        for (size_t k = 0; k < I; ++k) {
            T acc = T(0);
            for (size_t j = 0; j < O; ++j) acc += d[r * O + j] * W[k * O + j];
            dx[r * I + k] = m::activate_backward(act, acc, x[r * I + k]);
        }
}

// ---- one model ------------------------------------------------------------------------

template <typename T>
struct Model {
    std::vector<size_t> sizes;      // input, hidden…, output
    uint32_t act = 0, loss = 0;
    std::vector<size_t> w_off, b_off;  // where W_l and b_l start in params
    std::vector<T> params, grads;      // one flat array each, the layout of nn_backend.h
    std::vector<T> data_x, data_t;     // the uploaded training set (data_t: regression)
    std::vector<int32_t> data_labels;  // (classification)
    std::vector<std::vector<T>> acts;  // acts[l]: (B, sizes[l]); acts.back(): scores
    std::vector<T> delta, delta_next, terms, batch_t;
    std::vector<int32_t> batch_labels;
    size_t capacity = 0;  // rows the workspace holds

    size_t layers() const { return sizes.size() - 1; }

    void init(const nn_backend_net &net) {
        sizes.assign(net.layer_sizes, net.layer_sizes + net.n_layer_sizes);
        act = net.hidden_activation;
        loss = net.loss;
        size_t off = 0;
        for (size_t l = 0; l < layers(); ++l) {
            w_off.push_back(off);
            off += sizes[l] * sizes[l + 1];
            b_off.push_back(off);
            off += sizes[l + 1];
        }
        params.assign(off, T(0));
        grads.assign(off, T(0));
        acts.resize(sizes.size());
    }

    // Every buffer a step touches, sized for `rows`: train_steps itself never allocates.
    void size_workspace(size_t rows) {
        if (rows <= capacity) return;
        size_t widest = 0;
        for (size_t s : sizes) widest = s > widest ? s : widest;
        for (size_t l = 0; l < acts.size(); ++l) acts[l].assign(rows * sizes[l], T(0));
        delta.assign(rows * widest, T(0));
        delta_next.assign(rows * widest, T(0));
        terms.assign(rows * sizes.back(), T(0));
        batch_t.assign(rows * sizes.back(), T(0));
        batch_labels.assign(rows, 0);
        capacity = rows;
    }

    void forward(size_t B) {
        for (size_t l = 0; l < layers(); ++l)
            affine_forward(acts[l + 1].data(), acts[l].data(), &params[w_off[l]], &params[b_off[l]], B, sizes[l],
                           sizes[l + 1], l + 1 < layers(), act);
    }

    // Turns the scores (B, O) into d loss / d scores in place and returns the mean loss.
    double loss_and_dscores(T *s, size_t B) {
        const size_t O = sizes.back();
        if (loss == m::kSoftmaxCrossEntropy) {
            for (size_t r = 0; r < B; ++r) {
                m::softmax_row(s + r * O, O);
                terms[r] = m::cross_entropy_term(s[r * O + size_t(batch_labels[r])]);
            }
            const double value = double(-m::pairwise_sum(terms.data(), B, 1)) / double(B);
            for (size_t r = 0; r < B; ++r) {
                s[r * O + size_t(batch_labels[r])] -= T(1);
                for (size_t j = 0; j < O; ++j) s[r * O + j] = s[r * O + j] / T(B);
            }
            return value;
        }
        for (size_t i = 0; i < B * O; ++i) {  // ½ Σ (y − t)² / B
            s[i] = s[i] - batch_t[i];
            terms[i] = s[i] * s[i];
        }
        const double value = 0.5 * double(m::pairwise_sum(terms.data(), B * O, 1)) / double(B);
        for (size_t i = 0; i < B * O; ++i) s[i] = s[i] / T(B);
        return value;
    }

    // One SGD step on the stored rows order[0..B).
    double step(const int64_t *order, size_t B, T lr) {
        const size_t in = sizes.front(), out = sizes.back(), L = layers();
        for (size_t r = 0; r < B; ++r) {  // gather the batch
            const size_t src = size_t(order[r]);
            std::memcpy(&acts[0][r * in], &data_x[src * in], in * sizeof(T));
            if (loss == m::kSoftmaxCrossEntropy)
                batch_labels[r] = data_labels[src];
            else
                std::memcpy(&batch_t[r * out], &data_t[src * out], out * sizeof(T));
        }
        forward(B);
        const double value = loss_and_dscores(acts[L].data(), B);
        const T *d = acts[L].data();
        for (size_t l = L; l-- > 0;) {
            T *dx = l > 0 ? delta_next.data() : nullptr;
            affine_backward(dx, &grads[w_off[l]], &grads[b_off[l]], d, acts[l].data(), &params[w_off[l]], B, sizes[l],
                            sizes[l + 1], act);
            if (l > 0) {
                delta.swap(delta_next);
                d = delta.data();
            }
        }
        for (size_t i = 0; i < params.size(); ++i) params[i] = m::sgd_update(params[i], grads[i], lr);
        return value;
    }

    void predict(const T *x, size_t rows, T *scores) {
        const size_t in = sizes.front(), out = sizes.back(), chunk = rows < 1024 ? rows : 1024;
        size_workspace(chunk);
        for (size_t start = 0; start < rows; start += chunk) {
            const size_t B = rows - start < chunk ? rows - start : chunk;
            std::memcpy(acts[0].data(), x + start * in, B * in * sizeof(T));
            forward(B);
            std::memcpy(scores + start * out, acts.back().data(), B * out * sizeof(T));
        }
    }
};

}  // namespace

// The opaque handle of nn_backend.h: one of the two instantiations.
struct nn_backend_model {
    bool f64;
    Model<float> m32;
    Model<double> m64;
};

namespace {

// Runs `fn(model)` on the model's instantiation; no exception leaves a plugin.
template <typename Fn>
nn_backend_result guarded(nn_backend_model *model, Fn &&fn) {
    try {
        if (model->f64)
            fn(model->m64);
        else
            fn(model->m32);
        return NN_BACKEND_OK;
    } catch (const std::bad_alloc &) {
        report("backend-minimal: out of memory");
        return NN_BACKEND_ERR_OUT_OF_MEMORY;
    } catch (...) {
        report("backend-minimal: unexpected failure");
        return NN_BACKEND_ERR_INVALID;
    }
}

template <typename M>
using elem_t = typename decltype(M::params)::value_type;

int minimal_device_count(char *, size_t) { return 1; }

nn_backend_result minimal_device_describe(int index, nn_backend_device *out) {
    if (index != 0) {
        report("backend-minimal: only device 0 exists");
        return NN_BACKEND_ERR_INVALID;
    }
    out->available = 1;
    std::snprintf(out->name, sizeof out->name, "backend-minimal (plain loops, 1 thread)");
    out->reason[0] = '\0';
    return NN_BACKEND_OK;
}

nn_backend_result minimal_model_create(int, const nn_backend_net *net, nn_backend_model **out) {
    if (net->dtype != 0 && net->dtype != 1) {  // NN_DTYPE_FLOAT32, NN_DTYPE_FLOAT64
        report("backend-minimal: only float32 and float64 models");
        return NN_BACKEND_ERR_UNSUPPORTED;
    }
    nn_backend_model *model = new (std::nothrow) nn_backend_model{net->dtype == 1, {}, {}};
    if (!model) {
        report("backend-minimal: out of memory");
        return NN_BACKEND_ERR_OUT_OF_MEMORY;
    }
    nn_backend_result r = guarded(model, [&](auto &impl) { impl.init(*net); });
    if (r != NN_BACKEND_OK) {
        delete model;
        return r;
    }
    *out = model;
    return NN_BACKEND_OK;
}

void minimal_model_destroy(nn_backend_model *model) { delete model; }

nn_backend_result minimal_params_write(nn_backend_model *model, const void *params) {
    return guarded(model, [&](auto &impl) {
        std::memcpy(impl.params.data(), params, impl.params.size() * sizeof(elem_t<std::decay_t<decltype(impl)>>));
    });
}

nn_backend_result minimal_params_read(nn_backend_model *model, void *out) {
    return guarded(model, [&](auto &impl) {
        std::memcpy(out, impl.params.data(), impl.params.size() * sizeof(elem_t<std::decay_t<decltype(impl)>>));
    });
}

nn_backend_result minimal_data_upload(nn_backend_model *model, const void *x, const void *targets, size_t rows,
                                      size_t max_batch) {
    return guarded(model, [&](auto &impl) {
        using T = elem_t<std::decay_t<decltype(impl)>>;
        const T *xs = static_cast<const T *>(x);
        impl.data_x.assign(xs, xs + rows * impl.sizes.front());
        if (impl.loss == m::kSoftmaxCrossEntropy) {
            const int32_t *labels = static_cast<const int32_t *>(targets);
            impl.data_labels.assign(labels, labels + rows);
        } else {
            const T *t = static_cast<const T *>(targets);
            impl.data_t.assign(t, t + rows * impl.sizes.back());
        }
        impl.size_workspace(max_batch);
    });
}

nn_backend_result minimal_train_steps(nn_backend_model *model, const int64_t *order, size_t steps, size_t batch,
                                      const nn_backend_train_config *config, double *out_losses) {
    return guarded(model, [&](auto &impl) {
        using T = elem_t<std::decay_t<decltype(impl)>>;
        for (size_t s = 0; s < steps; ++s) out_losses[s] = impl.step(order + s * batch, batch, T(config->learning_rate));
    });
}

nn_backend_result minimal_predict(nn_backend_model *model, const void *x, size_t rows, void *out_scores) {
    return guarded(model, [&](auto &impl) {
        using T = elem_t<std::decay_t<decltype(impl)>>;
        impl.predict(static_cast<const T *>(x), rows, static_cast<T *>(out_scores));
    });
}

const nn_backend_iface kMinimalIface = {
    .abi_version = NN_BACKEND_ABI_VERSION,
    .struct_size = sizeof(nn_backend_iface),
    .name = "backend-minimal",
    .device_count = minimal_device_count,
    .device_describe = minimal_device_describe,
    .model_create = minimal_model_create,
    .model_destroy = minimal_model_destroy,
    .params_write = minimal_params_write,
    .params_read = minimal_params_read,
    .data_upload = minimal_data_upload,
    .train_steps = minimal_train_steps,
    .predict = minimal_predict,
    // The optimizer-state members are left out (NULL): libnn then trains this backend
    // with plain SGD only, and refuses other optimizers, clipping, weight decay and
    // class weights on it with NN_ERR_UNSUPPORTED.
    .optimizer_state_write = nullptr,
    .optimizer_state_read = nullptr,
    .data_attach = nullptr,
    .capabilities = 0,         // one train_steps call never spans several epochs
    .precision_set = nullptr,  // products always in the model's dtype
};

}  // namespace

// The one exported symbol (the target is built with hidden visibility).
extern "C" __attribute__((visibility("default"))) const nn_backend_iface *nn_backend_entry(const nn_host_services *host) {
    if (!host || host->abi_version != NN_BACKEND_ABI_VERSION) {
        if (host && host->set_error && host->struct_size >= offsetof(nn_host_services, log))
            host->set_error("backend-minimal: the host's plugin ABI version differs from the plugin's");
        return nullptr;
    }
    g_host = host;
    return &kMinimalIface;
}
