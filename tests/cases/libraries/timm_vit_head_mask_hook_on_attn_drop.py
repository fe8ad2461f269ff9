# %%
import timm
import torch
import torch.nn.functional as F

torch.manual_seed(0)
model = timm.create_model(
    "vit_tiny_patch16_224",
    pretrained=False,
    img_size=32,
    patch_size=8,
    embed_dim=32,
    depth=2,
    num_heads=2,
    num_classes=5,
)
for block in model.blocks:
    block.attn.fused_attn = False
head_mask = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)


def mask_heads(module, inputs, output):
    output.mul_(head_mask)


model.blocks[1].attn.attn_drop.register_forward_hook(mask_heads)

# %%
images = torch.randn(2, 3, 32, 32)
labels = torch.tensor([0, 4])
loss = F.cross_entropy(model(images), labels)
loss.backward()
