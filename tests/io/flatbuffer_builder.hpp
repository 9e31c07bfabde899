// A tiny FlatBuffer writer for tests: builds small .tflite models field by field, so the
// reader's expected values are the ones written here, not the reader's own output.
//
// Layout is "forward": each table's vtable comes right before it and its children after it,
// which the FlatBuffers format allows (offsets to children are unsigned and point forward).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace fbb {

struct Node;
using NodePtr = std::shared_ptr<Node>;

/// A field of a table: inline scalar bytes, or an offset to another node.
struct Field {
    std::vector<std::uint8_t> inline_bytes;
    NodePtr ref;
};

struct Node {
    enum Kind { table, string, scalars, tables } kind = table;
    std::vector<std::pair<int, Field>> fields;  // table
    std::vector<std::uint8_t> raw;              // string, scalars
    std::uint32_t count = 0;                    // string, scalars
    std::vector<NodePtr> items;                 // tables
};

template <class T>
Field scalar(T v) {
    Field f;
    f.inline_bytes.resize(sizeof(T));
    std::memcpy(f.inline_bytes.data(), &v, sizeof(T));  // tests run on little-endian machines
    return f;
}

inline Field ref(NodePtr n) {
    Field f;
    f.ref = std::move(n);
    return f;
}

inline NodePtr table(std::vector<std::pair<int, Field>> fields) {
    auto n = std::make_shared<Node>();
    n->kind = Node::table;
    n->fields = std::move(fields);
    return n;
}

inline NodePtr str(const std::string& s) {
    auto n = std::make_shared<Node>();
    n->kind = Node::string;
    n->raw.assign(s.begin(), s.end());
    n->count = static_cast<std::uint32_t>(s.size());
    return n;
}

template <class T>
NodePtr vec(const std::vector<T>& v) {
    auto n = std::make_shared<Node>();
    n->kind = Node::scalars;
    n->raw.resize(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(n->raw.data(), v.data(), n->raw.size());
    n->count = static_cast<std::uint32_t>(v.size());
    return n;
}

inline NodePtr tables(std::vector<NodePtr> items) {
    auto n = std::make_shared<Node>();
    n->kind = Node::tables;
    n->items = std::move(items);
    return n;
}

namespace detail {

inline void put32(std::vector<std::uint8_t>& out, std::size_t at, std::uint32_t v) {
    std::memcpy(out.data() + at, &v, 4);
}

inline void align(std::vector<std::uint8_t>& out, std::size_t a) {
    while (out.size() % a) out.push_back(0);
}

inline std::size_t emit(const Node& n, std::vector<std::uint8_t>& out) {
    align(out, 8);
    switch (n.kind) {
        case Node::string:
        case Node::scalars: {
            const std::size_t pos = out.size();
            out.resize(pos + 4);
            put32(out, pos, n.count);
            out.insert(out.end(), n.raw.begin(), n.raw.end());
            if (n.kind == Node::string) out.push_back(0);
            return pos;
        }
        case Node::tables: {
            const std::size_t pos = out.size();
            out.resize(pos + 4 + 4 * n.items.size());
            put32(out, pos, static_cast<std::uint32_t>(n.items.size()));
            for (std::size_t i = 0; i < n.items.size(); ++i) {
                const std::size_t slot = pos + 4 + 4 * i;
                const std::size_t child = emit(*n.items[i], out);
                put32(out, slot, static_cast<std::uint32_t>(child - slot));
            }
            return pos;
        }
        case Node::table: {
            int max_field = -1;
            for (const auto& [i, f] : n.fields) max_field = std::max(max_field, i);
            const std::size_t vsize = 4 + 2 * static_cast<std::size_t>(max_field + 1);
            std::vector<std::uint16_t> offsets(static_cast<std::size_t>(max_field + 1), 0);
            std::size_t tsize = 4;
            for (const auto& [i, f] : n.fields) {
                offsets[static_cast<std::size_t>(i)] = static_cast<std::uint16_t>(tsize);
                tsize += f.ref ? 4 : f.inline_bytes.size();
            }
            // vtable, then (4-aligned) table.
            const std::size_t vt = out.size();
            out.resize(vt + vsize);
            const std::uint16_t head[2] = {static_cast<std::uint16_t>(vsize), static_cast<std::uint16_t>(tsize)};
            std::memcpy(out.data() + vt, head, 4);
            if (!offsets.empty()) std::memcpy(out.data() + vt + 4, offsets.data(), 2 * offsets.size());
            align(out, 4);
            const std::size_t pos = out.size();
            out.resize(pos + tsize);
            const std::int32_t soffset = static_cast<std::int32_t>(pos - vt);
            std::memcpy(out.data() + pos, &soffset, 4);
            for (const auto& [i, f] : n.fields) {
                const std::size_t at = pos + offsets[static_cast<std::size_t>(i)];
                if (!f.ref) std::memcpy(out.data() + at, f.inline_bytes.data(), f.inline_bytes.size());
            }
            for (const auto& [i, f] : n.fields) {
                if (!f.ref) continue;
                const std::size_t at = pos + offsets[static_cast<std::size_t>(i)];
                const std::size_t child = emit(*f.ref, out);
                put32(out, at, static_cast<std::uint32_t>(child - at));
            }
            return pos;
        }
    }
    return 0;
}

}  // namespace detail

/// The bytes of a flatbuffer whose root table is `root`, with file identifier `ident` (4 chars).
inline std::vector<std::byte> finish(const NodePtr& root, const std::string& ident) {
    std::vector<std::uint8_t> out(8, 0);
    std::memcpy(out.data() + 4, ident.data(), 4);
    const std::size_t pos = detail::emit(*root, out);
    detail::put32(out, 0, static_cast<std::uint32_t>(pos));
    std::vector<std::byte> b(out.size());
    std::memcpy(b.data(), out.data(), out.size());
    return b;
}

}  // namespace fbb
