# %%
import torch

w = torch.randn(4, 3, requires_grad=True)
with torch.no_grad():
    first_row = w[0]

# %%
first_row.mul_(2)
