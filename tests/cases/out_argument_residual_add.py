# %%
import torch
import torch.nn as nn

torch.manual_seed(0)


class Residual(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.fn = nn.Linear(dim, dim)

    def forward(self, x):
        y = self.fn(x)
        torch.add(y, x, out=y)
        return y


net = nn.Sequential(nn.Linear(3, 4), Residual(4))

# %%
net(torch.randn(2, 3)).sum().backward()
