# %%
import torch
import torch.nn as nn

torch.manual_seed(0)
disc = nn.Sequential(
    nn.Linear(8, 16),
    nn.LeakyReLU(negative_slope=-0.2, inplace=True),
    nn.Linear(16, 1),
)

# %%
disc(torch.randn(4, 8)).mean().backward()
