# %%
from functools import partial

import torch
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

torch.manual_seed(0)


def policy(ctx, op, *args, **kwargs):
    if op == torch.ops.aten.mm.default:
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


w = torch.randn(4, 4, requires_grad=True)


def mlp(x):
    h = torch.mm(x, w)
    h.mul_(0.5)
    return torch.sin(h)


# %%
context = partial(create_selective_checkpoint_contexts, policy)
out = checkpoint(mlp, torch.randn(3, 4), use_reentrant=False, context_fn=context)
out.sum().backward()
