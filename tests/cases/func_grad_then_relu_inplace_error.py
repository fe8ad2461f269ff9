# %%
import torch
import torch.nn as nn
from torch.func import grad

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 3), nn.Sigmoid())


def energy(x):
    return (x**2).sum()


# %%
x = torch.randn(3)
force = grad(energy)(x)
h = net(x + force)
h.add_(1.0)
h.sum().backward()
