# %%
import torch
import torch.nn as nn

torch.manual_seed(0)


class Scaler(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        x.mul_(0.5)
        return self.proj(x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(4, 6)
        self.scale = Scaler(6)

    def forward(self, x):
        return self.scale(self.inp(x))


model = Net()
model.scale.register_full_backward_hook(lambda m, gin, gout: None)

# %%
model(torch.randn(2, 4)).sum().backward()
