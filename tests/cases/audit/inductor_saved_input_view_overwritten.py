# %%
import torch

torch.manual_seed(0)
w = torch.randn(3, 3, requires_grad=True)
batch = torch.randn(2, 3)


@torch.compile(backend="inductor")
def predict(x, w):
    return x @ w  # saves x.t(), a view of the input, for w's gradient


# %%
out = predict(batch, w)
batch.copy_(torch.randn(2, 3))  # the input buffer reused before backward (pytorch issue #197887)
out.sum().backward()
