# %%
import torch
import torch.nn as nn

torch.manual_seed(0)


class ScaleInPlace(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        x.mul_(factor)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


gate = nn.Linear(4, 4)

# %%
g = torch.sigmoid(gate(torch.randn(3, 4)))
out = ScaleInPlace.apply(g, 2.0)
out.sum().backward()
