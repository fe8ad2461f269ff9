# %%
import torch

torch.manual_seed(0)
w = torch.randn(3, requires_grad=True)
b = torch.randn(3, requires_grad=True)

# %%
x = torch.randn(4, 3)
target = torch.randn(4)
pred = x @ w
loss = ((pred - target) ** 2).mean()
(gw, gb) = torch.autograd.grad(loss, [w, b])
