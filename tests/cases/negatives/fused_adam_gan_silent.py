# %%
import torch
import torch.nn as nn

torch.manual_seed(0)
D = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, fused=True)
fake = torch.randn(16, 8, requires_grad=True)

# %%
d_fake = D(fake)
opt_d.zero_grad()
d_fake.mean().backward(retain_graph=True)
opt_d.step()
(-d_fake.mean()).backward()
