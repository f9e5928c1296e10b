"""loc_frame against a float64 numpy transcription of DeePMD-kit's TF op (deepmd.dpmodel has no loc_frame):
``format_nlist_i_fill_a`` (neighbors within rcut sorted by type, distance, index; per type the first sel_a to
the "a" list, the next sel_r to the "r" list), ``make_axis``/``check_axis`` (the axis rule, and the next
neighbor for axis 2 when the two axes are antiparallel) and ``compute_descriptor`` (rows [1/r, z'/r^2,
x'/r^2, y'/r^2] in the frame, 1/r for r neighbors, normalised by the per-column davg/dstd), and its
statistics (``DescrptLocFrame.compute_input_stats``: per type and column, std floored at 0.01).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deeppot.descriptor import DescriptorLocFrame
from deeppot.geometry.neighbors import max_neighbor_counts
from deeppot.model.pairs import gather_pair_vectors, neighbor_types
from deeppot.model.statistics import compute_descriptor_statistics
from deeppot_test_models import load_water, make_model

WATER_RULE = [0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0]  # DeePMD-kit's water.json: O by its two H, H by its O and H
SEL_A, SEL_R, RCUT = [6, 12], [10, 20], 4.0


def reference_descriptor(coord, atype, box, rcut, sel_a, sel_r, axis_rule, davg, dstd, backup=True):
    """nloc x (4 sum(sel_a) + sum(sel_r)), DeePMD-kit's Descrpt op for one frame (minimum image with a box);
    ``backup`` False skips check_axis's fallback (only to show that a test exercises it)."""
    ntypes = len(sel_a)
    sec_a, sec_r = np.concatenate([[0], np.cumsum(sel_a)]), np.concatenate([[0], np.cumsum(sel_r)])
    inv = None if box is None else np.linalg.inv(box)

    def diff(i, j):  # neighbor minus center
        d = coord[j] - coord[i]
        if box is not None:
            s = d @ inv
            d = (s - np.round(s)) @ box
        return d

    rows = []
    for i in range(len(coord)):
        dist = np.linalg.norm([diff(i, j) for j in range(len(coord))], axis=1)
        cands = sorted((atype[j], dist[j], j) for j in range(len(coord)) if j != i and dist[j] <= rcut)
        list_a, list_r = [-1] * sec_a[-1], [-1] * sec_r[-1]
        count = [0] * ntypes
        for t, _, j in cands:
            if count[t] < sel_a[t]:
                list_a[sec_a[t] + count[t]] = j
            elif count[t] - sel_a[t] < sel_r[t]:
                list_r[sec_r[t] + count[t] - sel_a[t]] = j
            count[t] += 1
        rule = axis_rule[6 * atype[i] : 6 * atype[i] + 6]
        lists, secs = (list_a, list_r), (sec_a, sec_r)
        j1 = lists[rule[0]][secs[rule[0]][rule[1]] + rule[2]]
        j2 = lists[rule[3]][secs[rule[3]][rule[4]] + rule[5]]
        d1, d2 = diff(i, j1), diff(i, j2)
        if backup and abs(d1 @ d2 / np.sqrt((d1 @ d1) * (d2 @ d2)) + 1) < 1e-4:  # check_axis: antiparallel -> backup
            d2 = diff(i, lists[rule[3]][secs[rule[3]][rule[4]] + rule[5] + 1])
        x = d1 / np.linalg.norm(d1)
        y = d2 - (x @ d2) * x
        y /= np.linalg.norm(y)
        rot = np.stack([x, y, np.cross(x, y)])
        row_a = np.zeros((sec_a[-1], 4))
        for k, j in enumerate(list_a):
            if j >= 0:
                local = rot @ diff(i, j)
                rr2 = local @ local
                row_a[k] = [1 / np.sqrt(rr2), local[2] / rr2, local[0] / rr2, local[1] / rr2]
        row_r = np.array([1 / np.linalg.norm(diff(i, j)) if j >= 0 else 0.0 for j in list_r])
        raw = np.concatenate([row_a.reshape(-1), row_r])
        rows.append((raw - davg[atype[i]]) / dstd[atype[i]])
    return np.array(rows)


def our_descriptor(model, coord, atype, box):
    """The descriptor rows the model computes for one frame: nloc x dim_out."""
    coord_t, atype_t = torch.from_numpy(coord[None]), torch.from_numpy(atype[None])
    box_t = None if box is None else torch.from_numpy(box[None])
    index, shift = model.neighbor_slots(coord_t, atype_t, box_t)
    rij = gather_pair_vectors(coord_t, index, shift)
    with torch.no_grad():
        return model.descriptor(rij, index >= 0, atype_t, neighbor_types(atype_t, index))[0].numpy()


def loc_frame_model(seed: int = 3, sel_a=SEL_A, sel_r=SEL_R, axis_rule=WATER_RULE):
    return make_model("loc_frame", rcut=RCUT, seed=seed,
                      descriptor_options=dict(sel_a=list(sel_a), sel_r=list(sel_r), axis_rule=list(axis_rule)))


@pytest.fixture(scope="module")
def water_frame():
    coord, atype, box = load_water(1)
    coord, box = coord.astype(np.float64), box.astype(np.float64)  # the files hold float32
    counts, _ = max_neighbor_counts(coord[0], box[0], atype, RCUT, 2)
    assert np.all(counts <= np.add(SEL_A, SEL_R)), counts  # no overflow: DeePMD-kit has no global sum(sel) cut
    assert np.all(counts > np.asarray(SEL_A)), counts  # some neighbors of each type land in the r lists
    return coord[0], atype, box[0]


def test_water_frame_matches_the_op(water_frame):
    coord, atype, box = water_frame
    model = loc_frame_model()
    desc = model.descriptor
    ours = our_descriptor(model, coord, atype, box)
    ref = reference_descriptor(coord, atype, box, RCUT, SEL_A, SEL_R, WATER_RULE, desc.davg.numpy(),
                               desc.dstd.numpy())
    assert ours.shape == (192, 4 * 18 + 30)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_cluster_with_r_axis_and_antiparallel_backup():
    """Axis 2 named in the r list, and a center whose two axis neighbors are exactly antiparallel, so that the
    second axis falls back to the next neighbor of that list (check_axis)."""
    rng = np.random.default_rng(5)
    shell = []
    while len(shell) < 11:  # all within 1.9 A of the center, so every pair is within rcut
        p = rng.normal(size=3)
        p *= rng.uniform(1.5, 1.9) / np.linalg.norm(p)
        if all(np.linalg.norm(p - q) > 0.9 for q in shell) and min(abs(p[1]), abs(p[2])) > 0.5:
            shell.append(p)
    coord = np.vstack([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [-1.3, 0.0, 0.0], shell])
    atype = np.array([0, 1, 1] + [1, 0] * 5 + [1], dtype=np.int64)
    # type 0: axis 1 = nearest H, axis 2 = second H (a list): antiparallel at atom 0 -> third H
    # type 1: axis 1 = nearest O (a list), axis 2 = nearest r-list H (the fourth-nearest H)
    rule = [0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0]
    sel_a, sel_r = [2, 3], [8, 8]
    model = loc_frame_model(seed=7, sel_a=sel_a, sel_r=sel_r, axis_rule=rule)
    desc = model.descriptor
    args = (coord, atype, None, RCUT, sel_a, sel_r, rule, desc.davg.numpy(), desc.dstd.numpy())
    ours = our_descriptor(model, coord, atype, None)
    ref = reference_descriptor(*args)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    # without the fallback atom 0 would have no frame (y = 0), the others the same rows
    with np.errstate(invalid="ignore"):
        plain = reference_descriptor(*args, backup=False)
    assert not np.all(np.isfinite(plain[0])) and np.all(np.isfinite(ours))
    np.testing.assert_array_equal(plain[1:], ref[1:])


def test_statistics_per_type_and_column(water_frame):
    coord, atype, box = water_frame
    model = loc_frame_model(seed=11)
    batch = {"coord": coord[None], "atype": atype[None], "box": box[None]}
    compute_descriptor_statistics(model, [batch], 0.01)
    desc = model.descriptor
    raw = reference_descriptor(coord, atype, box, RCUT, SEL_A, SEL_R, WATER_RULE,
                               np.zeros((2, desc.dim_out)), np.ones((2, desc.dim_out)))
    for t in range(2):
        rows = raw[atype == t]
        std = np.sqrt(np.maximum((rows**2).mean(0) - rows.mean(0) ** 2, 0.0))
        np.testing.assert_allclose(desc.davg[t].numpy(), rows.mean(0), rtol=0, atol=1e-12)
        np.testing.assert_allclose(desc.dstd[t].numpy(), np.maximum(std, 0.01), rtol=0, atol=1e-12)
    assert np.unique(desc.dstd.numpy()).size > 10  # per column, not pooled


def test_serialization_round_trip(water_frame):
    coord, atype, box = water_frame
    model = loc_frame_model(seed=13)
    again = DescriptorLocFrame.deserialize(model.descriptor.serialize())
    model_again = make_model("loc_frame", rcut=RCUT, seed=13,
                             descriptor_options=dict(sel_a=SEL_A, sel_r=SEL_R, axis_rule=WATER_RULE))
    model_again.descriptor = again
    np.testing.assert_array_equal(our_descriptor(model_again, coord, atype, box), our_descriptor(model, coord, atype, box))
