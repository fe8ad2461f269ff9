# %%
import torch

torch.manual_seed(0)
w = torch.randn(4, 4, requires_grad=True)
x = torch.randn(2, 4, requires_grad=True)

# %%
y = (x @ w).sum()
w.data = torch.zeros(4, 4)
y.backward()
print(float(x.grad.abs().sum()))  # 0.0: backward read the new values
