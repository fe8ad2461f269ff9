# %%
import torch

torch.manual_seed(0)
w = torch.randn(8, 8, requires_grad=True)


@torch.compile(backend="aot_eager")
def step(x):
    y = torch.sigmoid(x @ w)
    y.mul_(2)
    return y.sum()


# %%
loss = step(torch.randn(4, 8))
loss.backward()
