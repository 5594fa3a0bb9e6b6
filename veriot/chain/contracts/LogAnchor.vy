# pragma version ~=0.4.3
"""
@title veriot LogAnchor
@notice The public witness of veriot logs. The operator anchors signed checkpoints
        (log id, tree size, root, checkpoint time); for each log the anchored size only
        grows, so history cannot be rewritten without a visible, reverted attempt.
        Each anchor costs two new storage slots, whatever the number of leaves it covers.
"""

struct Anchor:
    size: uint256
    root: bytes32
    checkpoint_time_ms: uint256
    block_number: uint256

event Anchored:
    log_id: indexed(bytes32)
    size: uint256
    root: bytes32
    checkpoint_time_ms: uint256

event OperatorChanged:
    previous_operator: indexed(address)
    new_operator: indexed(address)

# The registry whose devices write to the anchored logs: a verifier needs only this
# contract's address to find both.
registry: public(address)
operator: public(address)
anchor_count: public(HashMap[bytes32, uint256])

_latest_size: HashMap[bytes32, uint256]
_roots: HashMap[bytes32, HashMap[uint256, bytes32]]
# checkpoint time in ms (high 128 bits) | block number (low 128 bits), one slot
_meta: HashMap[bytes32, HashMap[uint256, uint256]]


@deploy
def __init__(registry: address):
    self.registry = registry
    self.operator = msg.sender


@external
def anchor(log_id: bytes32, size: uint256, root: bytes32, checkpoint_time_ms: uint256):
    """
    @notice Anchors the checkpoint of `log_id` at `size`. Reverts unless the caller is the
            operator, size is greater than the latest anchored size of the log, the root is
            non-zero and the time fits in 128 bits.
    """
    assert msg.sender == self.operator, "caller is not the operator"
    assert size > self._latest_size[log_id], "size must grow"
    assert root != empty(bytes32), "empty root"
    assert checkpoint_time_ms < 2**128, "time out of range"
    self._latest_size[log_id] = size
    self._roots[log_id][size] = root
    self._meta[log_id][size] = (checkpoint_time_ms << 128) | block.number
    self.anchor_count[log_id] += 1
    log Anchored(log_id=log_id, size=size, root=root, checkpoint_time_ms=checkpoint_time_ms)


@external
def set_operator(new_operator: address):
    assert msg.sender == self.operator, "caller is not the operator"
    assert new_operator != empty(address), "zero operator"
    log OperatorChanged(previous_operator=self.operator, new_operator=new_operator)
    self.operator = new_operator


@internal
@view
def _anchor(log_id: bytes32, size: uint256) -> Anchor:
    meta: uint256 = self._meta[log_id][size]
    return Anchor(
        size=size if meta != 0 else 0,
        root=self._roots[log_id][size],
        checkpoint_time_ms=meta >> 128,
        block_number=meta & (2**128 - 1),
    )


@external
@view
def latest(log_id: bytes32) -> Anchor:
    """
    @notice The latest anchor of the log; all zero when it has none.
    """
    return self._anchor(log_id, self._latest_size[log_id])


@external
@view
def anchor_at(log_id: bytes32, size: uint256) -> Anchor:
    """
    @notice The anchor of the log at exactly `size`; all zero when that size was not anchored.
    """
    return self._anchor(log_id, size)
