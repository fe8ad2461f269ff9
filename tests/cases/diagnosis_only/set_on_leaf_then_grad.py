# %%
import torch

torch.manual_seed(0)
w = torch.randn(3, requires_grad=True)

# %%
loss = (w * 2).sum()
with torch.no_grad():
    w.set_(torch.randn(3))
(g,) = torch.autograd.grad(loss, w)
