# %%
import torch

torch.manual_seed(0)
w = torch.randn(4, 4, requires_grad=True)
x = torch.randn(2, 4)


@torch.compile(backend="aot_eager")
def gate(x, w):
    y = torch.sigmoid(x @ w)
    y.data.mul_(0.5)  # .data: a write autograd does not see, compiled or eager
    return y.sum()


# %%
gate(x, w).backward()
