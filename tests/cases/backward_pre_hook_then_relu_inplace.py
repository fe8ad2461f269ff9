# %%
import torch
import torch.nn as nn

torch.manual_seed(0)
mlp = nn.Sequential(
    nn.Linear(4, 8),
    nn.ReLU(inplace=True),
    nn.Linear(8, 1),
)
seen = []
mlp[0].register_full_backward_pre_hook(lambda module, grad_output: seen.append(grad_output[0].shape))

# %%
mlp(torch.randn(5, 4)).mean().backward()
