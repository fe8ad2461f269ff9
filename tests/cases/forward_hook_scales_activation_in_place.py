# %%
import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 1))


def damp(module, inputs, output):
    output.mul_(0.5)


net[1].register_forward_hook(damp)

# %%
net(torch.randn(2, 4)).sum().backward()
