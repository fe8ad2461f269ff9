# %%
import torch
import torch.nn as nn

torch.manual_seed(0)
G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8))
D = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, fused=True)
opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, fused=True)

# %%
for _step in range(2):
    real = torch.randn(32, 8)
    fake = G(torch.randn(32, 4))
    p_real, p_fake = D(real), D(fake)
    d_loss = -(torch.log(p_real) + torch.log(1 - p_fake)).mean()
    g_loss = -torch.log(p_fake).mean()
    opt_d.zero_grad()
    d_loss.backward(retain_graph=True)
    opt_d.step()
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
