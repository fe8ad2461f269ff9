# %%
import torch

torch.manual_seed(0)
x = torch.randn(4, requires_grad=True)

# %%
y = x.exp()
z = y * 3
y.detach().set_(torch.zeros(4))
z.sum().backward()
