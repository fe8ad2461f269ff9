# %%
import torch

torch.manual_seed(0)


class Flatten(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.view(-1)

    @staticmethod
    def backward(ctx, grad):
        return grad.view(ctx.shape)


w = torch.randn(2, 3, requires_grad=True)

# %%
flat = Flatten.apply(w * 2)
flat.clamp_(min=0)
flat.sum().backward()
