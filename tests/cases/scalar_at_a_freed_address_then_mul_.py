# %%
# A tensor made below the dispatcher (`torch.tensor(2.0)`: no op of the replay produced it) takes
# the address of a freed temporary, so both hold the storage key (address, version 0) and a dataflow
# read by address alone links the scalar to the op that made the temporary: `g.mul_(one)` seemed to
# merge two paths from the linear, a branch that is not there (a shared case showed it now and then).
import torch

torch.manual_seed(0)
x = torch.randn(6, 8)
lin = torch.nn.Linear(8, 4)


def gated(x):
    # until the scalar lands where the linear's freed output was: the allocator's choice
    for _ in range(2000):
        t = lin(x)
        freed = t.data_ptr()
        g = torch.sigmoid(t)
        del t
        scalars = [torch.tensor(2.0) for _ in range(32)]  # one of them, most likely
        one = next((s for s in scalars if s.data_ptr() == freed), None)
        if one is not None:
            return g.mul_(one)
    raise AssertionError("the allocator never reused the freed address")


# %%
gated(x).sum().backward()
