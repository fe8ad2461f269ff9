# %%
import torch
import torch.nn as nn

torch.manual_seed(0)
G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8))
D = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, foreach=True)
opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, foreach=True)

# %%
z = torch.randn(16, 4)
fake = G(z)
d_fake = D(fake)
d_loss = d_fake.mean()
g_loss = -d_fake.mean()
opt_d.zero_grad()
d_loss.backward(retain_graph=True)
opt_d.step()
opt_g.zero_grad()
g_loss.backward()
opt_g.step()
