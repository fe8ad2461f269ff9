# %%
import torch
import torch.nn as nn

torch.manual_seed(0)


def pack(t):
    t.div_(t.abs().max() + 1e-6)
    return t


def unpack(t):
    return t


model = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 1))

# %%
with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
    loss = model(torch.randn(2, 4)).sum()
loss.backward()
