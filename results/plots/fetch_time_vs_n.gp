set title 'fetch: time to fetch N slow URLs'
set xlabel 'N requests of 100 ms'
set ylabel 'wall time (s)'
set key outside right
set grid
set logscale x 10
set logscale y 10
set terminal svg size 800,450 dynamic
set output 'fetch_time_vs_n.svg'
plot 'fetch_time_vs_n.dat' index 0 using 1:2 with linespoints lw 2 title 'sync', 'fetch_time_vs_n.dat' index 1 using 1:2 with linespoints lw 2 title 'threads', 'fetch_time_vs_n.dat' index 2 using 1:2 with linespoints lw 2 title 'eddy-async', 'fetch_time_vs_n.dat' index 3 using 1:2 with linespoints lw 2 title 'requests', 'fetch_time_vs_n.dat' index 4 using 1:2 with linespoints lw 2 title 'aiohttp', 'fetch_time_vs_n.dat' index 5 using 1:2 with linespoints lw 2 title 'aiohttp-uvloop'
set terminal pngcairo size 800,450
set output 'fetch_time_vs_n.png'
plot 'fetch_time_vs_n.dat' index 0 using 1:2 with linespoints lw 2 title 'sync', 'fetch_time_vs_n.dat' index 1 using 1:2 with linespoints lw 2 title 'threads', 'fetch_time_vs_n.dat' index 2 using 1:2 with linespoints lw 2 title 'eddy-async', 'fetch_time_vs_n.dat' index 3 using 1:2 with linespoints lw 2 title 'requests', 'fetch_time_vs_n.dat' index 4 using 1:2 with linespoints lw 2 title 'aiohttp', 'fetch_time_vs_n.dat' index 5 using 1:2 with linespoints lw 2 title 'aiohttp-uvloop'
