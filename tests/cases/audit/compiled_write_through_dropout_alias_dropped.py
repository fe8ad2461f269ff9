# %%
import torch
import torch.nn.functional as F

torch.manual_seed(0)
w = torch.randn(4, requires_grad=True)
x = torch.ones(4)


@torch.compile(backend="aot_eager")
def scaled(x, w):
    y = F.dropout(x, 0.5, training=False)  # not training: dropout returns x itself
    y += 1  # so this writes x; the compiled graph drops the write (pytorch issue #195422)
    return (x * w).sum()


# %%
scaled(x, w).backward()
