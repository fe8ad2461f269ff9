# %%
import torch

torch.manual_seed(0)
w = torch.randn(4, 4, requires_grad=True)
x = torch.randn(2, 4)

# %%
y = torch.sigmoid(x @ w)
y.data.mul_(0.5)  # .data has its own version counter: autograd does not see this write
loss = y.sum()
loss.backward()
