# %%
import torch
from torch.func import grad, vmap

torch.manual_seed(0)
scale = torch.ones(3)


def per_sample_loss(w, x):
    scale.mul_(0.9)
    return (w * x * scale).sum() ** 2


# %%
w = torch.randn(3)
per_sample_grads = vmap(grad(per_sample_loss), in_dims=(None, 0))(w, torch.randn(5, 3))
