"""SynSE method plugin for zsbench (Gupta, Sharma, Sarvadevabhatla, ICIP 2021), with the
verb/noun text source its part-of-speech inputs come from (``zsbench_synse.pos``)."""
