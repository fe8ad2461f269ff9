# %%
import torch
import torch.nn.functional as F

torch.manual_seed(0)
w = torch.randn(4, 4, requires_grad=True)

# %%
h = F.elu(torch.randn(2, 4) @ w, alpha=-0.5, inplace=True)
h.sum().backward()
