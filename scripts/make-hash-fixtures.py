#!/usr/bin/env python3
"""Writes the perceptual-hash test images (Tests/LeaklessTests/Fixtures/hashes/) from the
builtin pool's photos, and imagehash.json: the pHash, dHash and aHash Python imagehash gives
for each. Needs Pillow, numpy and imagehash (pip); the tests need none of them.
Also writes Fixtures/rotated-exif6.jpg (EXIF orientation 6).
"""
import json, os, struct, zlib
from PIL import Image, ImageFilter, ImageEnhance
import imagehash
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
out = os.path.join(root, 'Tests/LeaklessTests/Fixtures/hashes')
pool = os.path.join(root, 'data/pool')
srcs = ['astronaut.png', 'coffee.png', 'chelsea.png', 'camera.png', 'rocket.jpg', 'path.jpg', 'colorful-cups.jpg', 'fallen-leaf.jpg']
files = {}
def save(im, name, **kw):
    p = os.path.join(out, name); im.save(p, **kw); files[name] = p
for i, s in enumerate(srcs):
    im = Image.open(os.path.join(pool, s)); im.load()
    base = im.convert('RGB') if im.mode not in ('RGB', 'L') else im
    w, h = base.size; sc = 200 / max(w, h)
    small = base.resize((max(1, int(w * sc)), max(1, int(h * sc))), Image.BICUBIC)
    stem = s.split('.')[0]
    save(small, f'{stem}.png')
    save(small.convert('RGB'), f'{stem}-q85.jpg', quality=85)
    if i % 2 == 0:
        save(small.convert('RGB'), f'{stem}-progressive.jpg', quality=80, progressive=True)
        save(small.convert('L'), f'{stem}-grey.png')
        save(small.convert('RGB').quantize(64), f'{stem}-palette.png')
    else:
        save(small.convert('L'), f'{stem}-grey.jpg', quality=90)
        save(small.convert('RGB'), f'{stem}-interlaced.png', optimize=False) # rewritten below
        save(small.convert('RGBA'), f'{stem}-rgba.png')
# interlaced PNGs: Pillow cannot write them; build with pypng-free approach via PIL? use ImageMagick-free: write raw Adam7
def write_interlaced(im, path):
    im = im.convert('RGB'); w, h = im.size; px = im.tobytes()
    passes = [(0,0,8,8),(4,0,8,8),(0,4,4,8),(2,0,4,4),(0,2,2,4),(1,0,2,2),(0,1,1,2)]
    raw = b''
    for x0, y0, dx, dy in passes:
        for y in range(y0, h, dy):
            cols = list(range(x0, w, dx))
            if not cols: continue
            raw += b'\x00' + b''.join(px[(y*w+x)*3:(y*w+x)*3+3] for x in cols)
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 1)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
    open(path, 'wb').write(data)
for name in list(files):
    if name.endswith('-interlaced.png'):
        write_interlaced(Image.open(files[name]), files[name])
# 16-bit RGB PNG
im = Image.open(files['coffee.png']).convert('RGB')
import numpy as np
a = np.asarray(im).astype('>u2') * 257
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
w, h = im.size
raw = b''.join(b'\x00' + a[y].tobytes() for y in range(h))
open(os.path.join(out, 'coffee-16bit.png'), 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 16, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
files['coffee-16bit.png'] = os.path.join(out, 'coffee-16bit.png')
# CMYK JPEG
save(Image.open(files['rocket.png' if 'rocket.png' in files else 'rocket-q85.jpg']).convert('CMYK'), 'rocket-cmyk.jpg', quality=90)
# near-duplicate variants of chelsea
c = Image.open(files['chelsea.png'])
save(c.filter(ImageFilter.GaussianBlur(1.2)), 'chelsea-blur.png')
save(ImageEnhance.Brightness(c).enhance(1.15), 'chelsea-bright.jpg', quality=88)
w, h = c.size
save(c.crop((6, 4, w - 5, h - 3)), 'chelsea-crop.png')
save(c.resize((w // 2, h // 2), Image.LANCZOS), 'chelsea-half.png')
ref = {}
for name in sorted(os.listdir(out)):
    if not name.endswith(('.png', '.jpg')): continue
    with Image.open(os.path.join(out, name)) as im:
        ref[name] = dict(phash=str(imagehash.phash(im)), dhash=str(imagehash.dhash(im)), ahash=str(imagehash.average_hash(im)), mode=im.mode, size=list(im.size))
json.dump(ref, open(os.path.join(out, 'imagehash.json'), 'w'), indent=1, sort_keys=True)
im = Image.open(os.path.join(out, 'rocket-q85.jpg'))
exif = Image.Exif(); exif[0x0112] = 6
im.save(os.path.join(out, '..', 'rotated-exif6.jpg'), quality=85, exif=exif.tobytes())
print(len(ref), "images")
