package dev.mosaic.kernels.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class DeviceArenaTest {

  /** Hands out fake addresses and records frees. */
  static final class FakeAllocator implements DeviceAllocator {
    long next = 0x1000;
    final Set<Long> live = new HashSet<>();
    final List<Long> freed = new ArrayList<>();
    long failOnFree = -1;
    boolean closed;

    @Override
    public long allocate(long bytes) {
      long a = next;
      next += bytes + 256;
      live.add(a);
      return a;
    }

    @Override
    public void free(long address) {
      if (address == failOnFree) {
        throw new IllegalStateException("free failed at " + address);
      }
      assertTrue(live.remove(address), "double or foreign free of " + address);
      freed.add(address);
    }

    @Override
    public void close() {
      closed = true;
    }
  }

  @Test
  void closeFreesEverythingInReverseOrderOnce() {
    FakeAllocator fake = new FakeAllocator();
    DeviceArena arena = new DeviceArena(fake, "task 7");
    long a = arena.allocate(100);
    long b = arena.allocate(0); // still gets an address
    long c = arena.allocate(300);
    assertEquals(401, arena.bytesInUse());
    arena.close();
    assertEquals(List.of(c, b, a), fake.freed);
    assertTrue(fake.live.isEmpty());
    assertTrue(fake.closed);
    arena.close(); // idempotent
    assertEquals(3, fake.freed.size());
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> arena.allocate(1));
    assertEquals("device arena of task 7 is closed", e.getMessage());
  }

  @Test
  void aFailingFreeDoesNotLeakTheRest() {
    FakeAllocator fake = new FakeAllocator();
    DeviceArena arena = new DeviceArena(fake, "task 8");
    long a = arena.allocate(10);
    long b = arena.allocate(10);
    long c = arena.allocate(10);
    fake.failOnFree = b;
    IllegalStateException e = assertThrows(IllegalStateException.class, arena::close);
    assertEquals("freeing device memory of task 8 failed", e.getMessage());
    assertEquals(List.of(c, a), fake.freed);
    assertTrue(fake.closed, "the allocator's context is released even so");
  }

  @Test
  void reservedBuffersAreReusedAndGrow() {
    FakeAllocator fake = new FakeAllocator();
    try (DeviceArena arena = new DeviceArena(fake, "kernel")) {
      long q1 = arena.reserve("q", 1000);
      assertEquals(q1, arena.reserve("q", 800));
      assertEquals(q1, arena.reserve("q", 1000));
      long q2 = arena.reserve("q", 5000);
      assertTrue(q2 != q1);
      assertEquals(List.of(q1), fake.freed);
      assertEquals(1, arena.liveAllocations());
      assertEquals(5000, arena.bytesInUse());
      assertEquals(5000, arena.peakBytes()); // the old buffer goes before the new one comes
    }
    assertTrue(fake.live.isEmpty());
  }

  @Test
  void earlyFreeIsCheckedAndForgetsTheReservation() {
    FakeAllocator fake = new FakeAllocator();
    try (DeviceArena arena = new DeviceArena(fake, "t")) {
      long a = arena.reserve("k", 64);
      arena.free(a);
      assertEquals(0, arena.bytesInUse());
      long b = arena.reserve("k", 64);
      assertTrue(fake.live.contains(b));
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> arena.free(0xdead));
      assertEquals("device address 0xdead is not held by the arena of t", e.getMessage());
    }
  }
}
