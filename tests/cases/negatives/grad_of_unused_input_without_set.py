# %%
import torch

torch.manual_seed(0)
w = torch.randn(3, requires_grad=True)
b = torch.randn(3, requires_grad=True)

# %%
loss = (w * 2).sum()
(gw, gb) = torch.autograd.grad(loss, [w, b])
