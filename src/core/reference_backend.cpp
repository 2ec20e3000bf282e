// The reference implementation behind the same function table as a plugin, so the
// core drives every backend — built in or loaded — through one path.
#include "core/reference_backend.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <new>
#include <variant>

#include "core/error.h"
#include "core/reference.h"

struct nn_backend_model {
    std::variant<nn::ref::Model<float>, nn::ref::Model<double>> impl;
};

namespace nn {
namespace {

template <typename Fn>
nn_backend_result guarded(Fn &&fn) {
    try {
        fn();
        return NN_BACKEND_OK;
    } catch (const std::bad_alloc &) {
        set_backend_error("reference backend: out of memory");
        return NN_BACKEND_ERR_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        set_backend_error(e.what());
        return NN_BACKEND_ERR_INVALID;
    }
}

int ref_device_count(char *, size_t) { return 1; }

nn_backend_result ref_device_describe(int index, nn_backend_device *out) {
    if (index != 0) {
        set_backend_error("reference backend: only device 0 exists");
        return NN_BACKEND_ERR_INVALID;
    }
    out->available = 1;
    std::snprintf(out->name, sizeof out->name, "reference (built-in plain loops)");
    out->reason[0] = '\0';
    return NN_BACKEND_OK;
}

nn_backend_result ref_model_create(int, const nn_backend_net *net, nn_backend_model **out) {
    return guarded([&] {
        NetShape shape;
        shape.sizes.assign(net->layer_sizes, net->layer_sizes + net->n_layer_sizes);
        shape.activation = nn_activation(net->hidden_activation);
        shape.loss = nn_loss(net->loss);
        shape.dtype = nn_dtype(net->dtype);
        if (shape.dtype == NN_DTYPE_FLOAT64)
            *out = new nn_backend_model{ref::Model<double>(shape)};
        else
            *out = new nn_backend_model{ref::Model<float>(shape)};
    });
}

void ref_model_destroy(nn_backend_model *model) { delete model; }

nn_backend_result ref_params_write(nn_backend_model *model, const void *params) {
    std::visit([&](auto &m) {
        using T = typename std::decay_t<decltype(m.params())>::value_type;
        const T *p = static_cast<const T *>(params);
        std::copy(p, p + m.params().size(), m.params().begin());
    }, model->impl);
    return NN_BACKEND_OK;
}

nn_backend_result ref_params_read(nn_backend_model *model, void *out) {
    std::visit([&](auto &m) {
        using T = typename std::decay_t<decltype(m.params())>::value_type;
        std::copy(m.params().begin(), m.params().end(), static_cast<T *>(out));
    }, model->impl);
    return NN_BACKEND_OK;
}

nn_backend_result ref_data_upload(nn_backend_model *model, const void *x, const void *targets, size_t rows,
                                  size_t max_batch) {
    return guarded([&] {
        std::visit([&](auto &m) {
            using T = typename std::decay_t<decltype(m.params())>::value_type;
            m.upload(static_cast<const T *>(x), targets, rows, max_batch);
        }, model->impl);
    });
}

nn_backend_result ref_train_steps(nn_backend_model *model, const int64_t *order, size_t steps, size_t batch,
                                  const nn_backend_train_config *config, double *out_losses) {
    const optim::Settings settings(*config);
    if (!settings.known()) {
        set_backend_error("reference backend: unknown optimizer");
        return NN_BACKEND_ERR_UNSUPPORTED;
    }
    bool wrong_state = false;
    std::visit([&](auto &m) {
        if (m.optimizer_state().size() != NN_BACKEND_OPTIMIZER_SLOTS(settings.optimizer) * m.params().size()) {
            wrong_state = true;
            return;
        }
        for (size_t s = 0; s < steps; ++s) {
            out_losses[s] = m.train_step(order + s * batch, batch, settings, settings.adam_step + s + 1);
            if (settings.stops_on_non_finite() && !std::isfinite(out_losses[s])) break;
        }
    }, model->impl);
    if (wrong_state) {
        set_backend_error("reference backend: the optimizer state was not set for this optimizer");
        return NN_BACKEND_ERR_INVALID;
    }
    return NN_BACKEND_OK;
}

nn_backend_result ref_optimizer_state_write(nn_backend_model *model, uint32_t optimizer, const void *state,
                                            size_t count) {
    if (optimizer > optim::kAdam) {
        set_backend_error("reference backend: unknown optimizer");
        return NN_BACKEND_ERR_UNSUPPORTED;
    }
    return guarded([&] {
        std::visit([&](auto &m) {
            using T = typename std::decay_t<decltype(m.params())>::value_type;
            if (count != NN_BACKEND_OPTIMIZER_SLOTS(optimizer) * m.params().size())
                throw std::invalid_argument("reference backend: optimizer state of the wrong size");
            m.set_optimizer(optimizer, static_cast<const T *>(state));
        }, model->impl);
    });
}

nn_backend_result ref_optimizer_state_read(nn_backend_model *model, void *out, size_t count) {
    return guarded([&] {
        std::visit([&](auto &m) {
            using T = typename std::decay_t<decltype(m.params())>::value_type;
            if (count != m.optimizer_state().size())
                throw std::invalid_argument("reference backend: optimizer state of the wrong size");
            std::copy(m.optimizer_state().begin(), m.optimizer_state().end(), static_cast<T *>(out));
        }, model->impl);
    });
}

nn_backend_result ref_predict(nn_backend_model *model, const void *x, size_t rows, void *out_scores) {
    return guarded([&] {
        std::visit([&](auto &m) {
            using T = typename std::decay_t<decltype(m.params())>::value_type;
            m.predict(static_cast<const T *>(x), rows, static_cast<T *>(out_scores));
        }, model->impl);
    });
}

const nn_backend_iface kReferenceIface = {
    .abi_version = NN_BACKEND_ABI_VERSION,
    .struct_size = sizeof(nn_backend_iface),
    .name = "reference",
    .device_count = ref_device_count,
    .device_describe = ref_device_describe,
    .model_create = ref_model_create,
    .model_destroy = ref_model_destroy,
    .params_write = ref_params_write,
    .params_read = ref_params_read,
    .data_upload = ref_data_upload,
    .train_steps = ref_train_steps,
    .predict = ref_predict,
    .optimizer_state_write = ref_optimizer_state_write,
    .optimizer_state_read = ref_optimizer_state_read,
    .data_attach = nullptr,  // the reference copies its data (data_upload)
    .capabilities = NN_BACKEND_CAP_EPOCH_GROUPS,
    .precision_set = nullptr,  // the oracle is always strict
};

}  // namespace

const nn_backend_iface *reference_backend() { return &kReferenceIface; }

}  // namespace nn
