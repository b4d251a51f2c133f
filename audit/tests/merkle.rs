//! RFC 6962 / RFC 9162 tree hashing and proofs: pinned against the Certificate Transparency
//! reference vectors (google/certificate-transparency `merkle_tree_test.cc`, reused by
//! transparency-dev/merkle), and cross-checked against a naive recursive MTH for every
//! tree size 1..=70 and every index/size pair.

use ward_audit::Hash;
use ward_audit::merkle::{
    Frontier, MemoryTree, ProofError, consistency_proof_ranges, empty_root, inclusion_proof_ranges,
    leaf_hash, node_hash, perfect_subtrees, range_hash, verify_consistency, verify_inclusion,
};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h(s: &str) -> Hash {
    unhex(s).try_into().unwrap()
}

const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const CT_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn ct_tree() -> MemoryTree {
    let mut t = MemoryTree::new();
    for l in CT_LEAVES {
        t.push(leaf_hash(&unhex(l)));
    }
    t
}

#[test]
fn roots_match_the_certificate_transparency_reference_vectors() {
    let t = ct_tree();
    assert_eq!(
        t.root(0),
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(empty_root(), t.root(0));
    let mut f = Frontier::new();
    for (n, root) in CT_ROOTS.iter().enumerate() {
        assert_eq!(t.root(n as u64 + 1), h(root), "root of {} leaves", n + 1);
        f.push_leaf(leaf_hash(&unhex(CT_LEAVES[n])));
        assert_eq!(f.root(), h(root), "frontier root of {} leaves", n + 1);
    }
}

#[test]
fn inclusion_proofs_match_the_reference_vectors() {
    let t = ct_tree();
    // (0-based index, size, path) from merkle_tree_test.cc.
    let cases: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, path) in cases {
        let want: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        assert_eq!(t.inclusion_proof(index, size), want, "{index}/{size}");
        let leaf = leaf_hash(&unhex(CT_LEAVES[index as usize]));
        verify_inclusion(&leaf, index, size, &want, &t.root(size)).unwrap();
    }
}

#[test]
fn consistency_proofs_match_the_reference_vectors() {
    let t = ct_tree();
    let cases: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (old, new, path) in cases {
        let want: Vec<Hash> = path.iter().map(|p| h(p)).collect();
        assert_eq!(t.consistency_proof(old, new), want, "{old}->{new}");
        verify_consistency(old, new, &want, &t.root(old), &t.root(new)).unwrap();
    }
}

/// The definition, literally (RFC 6962 §2.1).
fn mth(leaves: &[Vec<u8>]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaf_hash(&leaves[0]),
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn leaves(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
}

#[test]
fn every_proof_for_every_size_up_to_70_verifies_and_wrong_inputs_are_rejected() {
    let data = leaves(70);
    let mut t = MemoryTree::new();
    for d in &data {
        t.push(leaf_hash(d));
    }
    let other = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    for size in 1..=70u64 {
        let root = mth(&data[..size as usize]);
        assert_eq!(t.root(size), root, "root {size}");
        for index in 0..size {
            let leaf = leaf_hash(&data[index as usize]);
            let proof = t.inclusion_proof(index, size);
            assert!(proof.len() as u32 <= 64 - (size - 1).leading_zeros());
            verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
            // Wrong leaf, index, size, root; extra and missing hashes.
            assert!(verify_inclusion(&other, index, size, &proof, &root).is_err());
            assert!(verify_inclusion(&leaf, index ^ 1, size, &proof, &root).is_err() || size == 1);
            // (The size itself is authenticated by the signed checkpoint, not by the proof;
            // a different depth must still fail.)
            assert!(verify_inclusion(&leaf, index, size * 2, &proof, &root).is_err());
            assert!(verify_inclusion(&leaf, index, size, &proof, &other).is_err());
            let mut long = proof.clone();
            long.push(other);
            assert!(verify_inclusion(&leaf, index, size, &long, &root).is_err());
            if !proof.is_empty() {
                assert_eq!(
                    verify_inclusion(&leaf, index, size, &proof[..proof.len() - 1], &root),
                    Err(ProofError::TooFewHashes)
                );
                let mut flipped = proof.clone();
                flipped[0][0] ^= 8;
                assert_eq!(
                    verify_inclusion(&leaf, index, size, &flipped, &root),
                    Err(ProofError::RootMismatch)
                );
            }
        }
        for old in 1..=size {
            let old_root = mth(&data[..old as usize]);
            let proof = t.consistency_proof(old, size);
            verify_consistency(old, size, &proof, &old_root, &root).unwrap();
            if old < size {
                assert!(verify_consistency(old, size, &proof, &other, &root).is_err());
                assert!(verify_consistency(old, size, &proof, &old_root, &other).is_err());
                assert!(verify_consistency(old, size, &proof, &root, &old_root).is_err());
                assert_eq!(
                    verify_consistency(old, size, &[], &old_root, &root),
                    Err(ProofError::EmptyProof)
                );
                let mut long = proof.clone();
                long.push(other);
                assert!(verify_consistency(old, size, &long, &old_root, &root).is_err());
                assert!(
                    verify_consistency(old, size, &proof[..proof.len() - 1], &old_root, &root)
                        .is_err()
                );
                let mut flipped = proof.clone();
                flipped[0][0] ^= 16;
                assert!(verify_consistency(old, size, &flipped, &old_root, &root).is_err());
                if old + 1 < size {
                    assert!(verify_consistency(old + 1, size, &proof, &old_root, &root).is_err());
                }
            }
        }
    }
}

#[test]
fn malformed_proofs_are_rejected_with_the_specific_error() {
    let data = leaves(8);
    let mut t = MemoryTree::new();
    for d in &data {
        t.push(leaf_hash(d));
    }
    let (r4, r8) = (t.root(4), t.root(8));
    let leaf = leaf_hash(&data[0]);
    assert_eq!(
        verify_inclusion(&leaf, 8, 8, &t.inclusion_proof(0, 8), &r8),
        Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
    );
    assert_eq!(
        verify_inclusion(&leaf, 0, 0, &[], &empty_root()),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    let mut long = t.inclusion_proof(0, 8);
    long.push(r4);
    assert_eq!(
        verify_inclusion(&leaf, 0, 8, &long, &r8),
        Err(ProofError::TooManyHashes)
    );
    assert_eq!(
        verify_consistency(8, 4, &[], &r8, &r4),
        Err(ProofError::SizeOrder { old: 8, new: 4 })
    );
    assert_eq!(
        verify_consistency(4, 8, &[], &r4, &r8),
        Err(ProofError::EmptyProof)
    );
    assert_eq!(
        verify_consistency(4, 4, &[r4], &r4, &r4),
        Err(ProofError::NonEmptyProof)
    );
    assert_eq!(
        verify_consistency(4, 4, &[], &r4, &r8),
        Err(ProofError::EqualSizeRootMismatch)
    );
    verify_consistency(0, 8, &[], &empty_root(), &r8).unwrap();
    assert_eq!(
        verify_consistency(0, 8, &[r4], &empty_root(), &r8),
        Err(ProofError::NonEmptyProof)
    );
    let mut long = t.consistency_proof(4, 8);
    long.push(r4);
    assert_eq!(
        verify_consistency(4, 8, &long, &r4, &r8),
        Err(ProofError::TooManyHashes)
    );
}

#[test]
fn interior_nodes_cannot_be_passed_off_as_leaves() {
    // Tamper case 9: the second preimage. Take a genuine 4-leaf tree and present its two
    // level-1 nodes' preimages (the 64-byte concatenations of their children) as leaves.
    let data = leaves(4);
    let l: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
    let genuine = mth(&data);
    let forged: Vec<Vec<u8>> = vec![[l[0], l[1]].concat(), [l[2], l[3]].concat()];
    // With naive H(l || r) hashing the forgery would verify:
    let naive = |a: &[u8]| -> Hash {
        use sha2::{Digest, Sha256};
        Sha256::digest(a).into()
    };
    let naive_root = |leaves: &[Vec<u8>]| naive(&[naive(&leaves[0]), naive(&leaves[1])].concat());
    let naive_genuine = naive(
        &[
            naive(&[naive(&data[0]), naive(&data[1])].concat()),
            naive(&[naive(&data[2]), naive(&data[3])].concat()),
        ]
        .concat(),
    );
    let naive_forged_leaves: Vec<Vec<u8>> = vec![
        [naive(&data[0]), naive(&data[1])].concat(),
        [naive(&data[2]), naive(&data[3])].concat(),
    ];
    assert_eq!(naive_root(&naive_forged_leaves), naive_genuine);
    // With RFC 6962 prefixes it does not.
    assert_ne!(mth(&forged), genuine);
    let proof = vec![node_hash(&l[2], &l[3])];
    assert_eq!(
        verify_inclusion(&leaf_hash(&forged[0]), 0, 2, &proof, &genuine),
        Err(ProofError::RootMismatch)
    );
}

#[test]
fn perfect_subtrees_decompose_any_range() {
    assert_eq!(perfect_subtrees(0, 0), vec![]);
    assert_eq!(perfect_subtrees(0, 13), vec![(3, 0), (2, 2), (0, 12)]);
    assert_eq!(
        perfect_subtrees(3, 13),
        vec![(0, 3), (2, 1), (2, 2), (0, 12)]
    );
    for lo in 0..40u64 {
        for hi in lo..80u64 {
            let parts = perfect_subtrees(lo, hi);
            let mut at = lo;
            for (level, index) in parts {
                assert_eq!(index << level, at, "aligned and contiguous");
                at += 1 << level;
            }
            assert_eq!(at, hi);
        }
    }
    assert_eq!(perfect_subtrees(0, u64::MAX).len(), 64);
}

#[test]
fn proof_ranges_are_perfect_or_end_at_the_right_edge_and_range_hash_composes_them() {
    let data = leaves(70);
    let mut t = MemoryTree::new();
    for d in &data {
        t.push(leaf_hash(d));
    }
    let ok = |(a, b): (u64, u64), size: u64| {
        let n = b - a;
        (n.is_power_of_two() && a % n == 0) || b == size
    };
    for size in 1..=70u64 {
        for index in 0..size {
            for r in inclusion_proof_ranges(index, size) {
                assert!(ok(r, size), "{r:?} in {size}");
            }
        }
        for old in 1..=size {
            for r in consistency_proof_ranges(old, size) {
                assert!(ok(r, size), "{r:?} in {size}");
            }
        }
        for lo in 0..size {
            let want = mth(&data[lo as usize..size as usize]);
            assert_eq!(range_hash(lo, size, &mut |l, i| t.subtree(l, i)), want);
        }
    }
}

#[test]
fn frontier_push_reports_every_completed_node_and_restores_from_peaks() {
    let data = leaves(70);
    let mut t = MemoryTree::new();
    let mut f = Frontier::new();
    for (i, d) in data.iter().enumerate() {
        let leaf = leaf_hash(d);
        t.push(leaf);
        let mut seen = Vec::new();
        f.push(leaf, &mut |level, index, hash| {
            seen.push((level, index, *hash))
        });
        // The leaf, then one node per trailing one bit of the old size.
        assert_eq!(seen.len() as u32, 1 + (i as u64).trailing_ones());
        for (level, index, hash) in seen {
            assert_eq!(t.subtree(level, index), hash);
        }
        let size = i as u64 + 1;
        assert_eq!(f.size(), size);
        assert_eq!(f.root(), t.root(size));
        let restored = Frontier::from_peaks(size, f.peaks().to_vec()).unwrap();
        assert_eq!(restored.root(), f.root());
        let expected: Vec<Hash> = perfect_subtrees(0, size)
            .into_iter()
            .map(|(l, i)| t.subtree(l, i))
            .collect();
        assert_eq!(f.peaks(), expected.as_slice());
    }
    assert_eq!(
        Frontier::from_peaks(3, vec![[0; 32]]).unwrap_err(),
        ProofError::PeakCount {
            size: 3,
            expected: 2,
            got: 1
        }
    );
    assert_eq!(Frontier::new().root(), empty_root());
}
