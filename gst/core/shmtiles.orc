# gst-shm: the inner loop of damage detection (orcc turns it into C, with a
# portable backup, at build time)

.function shm_orc_tile_sad
.flags 2d
.accumulator 4 a1 uint32_t
.source 1 s1 uint8_t
.source 1 s2 uint8_t

accsadubl a1, s1, s2
