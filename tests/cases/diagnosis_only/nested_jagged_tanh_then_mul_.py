# %%
import torch

torch.manual_seed(0)
a = torch.randn(2, 3, requires_grad=True)
b = torch.randn(4, 3, requires_grad=True)

# %%
nt = torch.nested.as_nested_tensor([a, b], layout=torch.jagged)
y = torch.tanh(nt)
y.mul_(2)
y.sum().backward()
