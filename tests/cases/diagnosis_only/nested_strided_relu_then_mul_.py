# %%
import torch

torch.manual_seed(0)
a, b = torch.randn(2, 3), torch.randn(4, 3)

# %%
nt = torch.nested.nested_tensor([a, b], requires_grad=True)
y = torch.relu(nt)
y.mul_(2)
torch.nested.to_padded_tensor(y, 0.0).sum().backward()
