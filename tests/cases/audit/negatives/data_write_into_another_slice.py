# %%
import torch

torch.manual_seed(0)
buffer = torch.randn(4, 4, requires_grad=True)
w = torch.randn(4, requires_grad=True)

# %%
z = (buffer[:2] * w).sum()  # mul saves rows 0-1 of the buffer
buffer.data[2:].zero_()  # rows 2-3: the same storage, not the saved region
z.backward()
