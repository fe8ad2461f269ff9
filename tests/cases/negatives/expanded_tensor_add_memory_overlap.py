# %%
import torch

torch.manual_seed(0)
bias = torch.zeros(1, 4)

# %%
x = torch.randn(3, 4, requires_grad=True)
scale = torch.rand(4)
shift = torch.rand(4)
tiled = bias.expand(3, 4)
tiled.add_(1.0)
(x * tiled * scale + shift).sum().backward()
