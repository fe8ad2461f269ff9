# %%
import torch

x = torch.randn(4, requires_grad=True)
y = torch.sigmoid(x)
r = y
y += 1
(r * 2).sum().backward()
